"""Save the graph to `<data_dir>/graph.json` on stop and load it on start.

Object bytes already live in the data directory; this keeps repositories, branches (with
their uncommitted changes), tags, commits and protection rules across restarts of a
`perago dev` server that was given a data directory. Written atomically (temp file, rename);
a crash loses what changed since the last clean stop.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from .core import StoreCore
from .model import Branch, Commit, Entry, Repository

FILE_NAME = "graph.json"
FORMAT = 1


def _entry(entry: Optional[Entry]) -> Optional[list[Any]]:
    if entry is None:
        return None
    return [entry.address, entry.checksum, entry.size, entry.mtime, entry.content_type, [list(m) for m in entry.metadata]]


def _load_entry(raw: Optional[list[Any]]) -> Optional[Entry]:
    if raw is None:
        return None
    address, checksum, size, mtime, content_type, metadata = raw
    return Entry(address, checksum, size, mtime, content_type, tuple((k, v) for k, v in metadata))


def save(store: StoreCore, data_dir: Path) -> None:
    with store.lock:
        repos = []
        for repo in store._repos.values():
            repos.append({
                "id": repo.id, "default_branch": repo.default_branch, "storage_namespace": repo.storage_namespace,
                "creation_date": repo.creation_date, "read_only": repo.read_only, "tags": repo.tags,
                "protection": repo.protection, "metadata": repo.metadata,
                "branches": [{"name": b.name, "head": b.head, "hidden": b.hidden,
                              "staging": {p: _entry(e) for p, e in b.staging.items()}} for b in repo.branches.values()],
                "commits": [[c.id, list(c.parents), c.committer, c.message, c.creation_ns, c.creation_date,
                             c.meta_range_id, [list(m) for m in c.metadata], c.generation] for c in repo.commits.values()],
            })
        trees = {tid: {p: _entry(e) for p, e in tree.items()} for tid, tree in store._trees.items()}
        document = {"format": FORMAT, "last_ns": store._last_ns, "repositories": repos, "trees": trees}
    target = data_dir / FILE_NAME
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(document))
    os.replace(temporary, target)


def load(store: StoreCore, data_dir: Path) -> bool:
    """Fill an empty store from `graph.json`; returns whether a saved graph was found."""
    source = data_dir / FILE_NAME
    if not source.exists():
        return False
    document = json.loads(source.read_text())
    if document.get("format") != FORMAT:
        raise ValueError(f"{source}: unsupported graph format {document.get('format')!r} (expected {FORMAT})")
    with store.lock:
        for tid, raw_tree in document["trees"].items():
            store._trees[tid] = {p: e for p, e in ((p, _load_entry(r)) for p, r in raw_tree.items()) if e is not None}
        for raw in document["repositories"]:
            repo = Repository(raw["id"], raw["default_branch"], raw["storage_namespace"], raw["creation_date"],
                              raw["read_only"], tags=dict(raw["tags"]), protection=list(raw["protection"]),
                              metadata=dict(raw["metadata"]))
            for cid, parents, committer, message, ns, date, tid, metadata, generation in raw["commits"]:
                repo.commits[cid] = Commit(cid, tuple(parents), committer, message, ns, date, tid,
                                           tuple((k, v) for k, v in metadata), generation)
            for b in raw["branches"]:
                repo.branches[b["name"]] = Branch(b["name"], b["head"], b["hidden"],
                                                  {p: _load_entry(e) for p, e in b["staging"].items()})
            store._repos[repo.id] = repo
        store._last_ns = max(store._last_ns, document["last_ns"])
    return True
