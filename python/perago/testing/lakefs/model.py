"""The versioned data model: entries, trees, commits, branches, repositories (spec §6.1).

Trees and commits are immutable and shared; a branch is a head commit plus an uncommitted
staging area of puts and tombstones. Commit and tree IDs are SHA-256 content addresses, so
two trees with the same entry identities have the same ID, which is how "no changes" and the
merge fast paths are decided.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Mapping, Optional

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Entry:
    """One object version. `identity` is what lakeFS compares in diffs, commits and merges."""

    address: str
    checksum: str
    size: int
    mtime: int
    content_type: str
    metadata: Metadata = ()

    @property
    def identity(self) -> tuple[int, str, str, Metadata]:
        return (self.size, self.checksum, self.content_type, self.metadata)


Tree = Mapping[str, Entry]


def tree_id(tree: Tree) -> str:
    digest = hashlib.sha256()
    for path in sorted(tree):
        digest.update(json.dumps([path, *tree[path].identity]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    committer: str
    message: str
    creation_ns: int
    creation_date: int
    meta_range_id: str
    metadata: tuple[tuple[str, str], ...]
    generation: int

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "committer": self.committer,
            "message": self.message,
            "creation_date": self.creation_date,
            "meta_range_id": self.meta_range_id,
            "metadata": dict(self.metadata),
            "generation": self.generation,
            "version": 1,
        }


def commit_id(
    parents: tuple[str, ...],
    committer: str,
    message: str,
    creation_ns: int,
    meta_range_id: str,
    metadata: Metadata,
    generation: int,
) -> str:
    record = [list(parents), committer, message, creation_ns, meta_range_id, list(metadata), generation]
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()


class SortedKeys:
    """Sorted key list of a tree or branch view, for prefix/after paging by bisection."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def start_index(self, prefix: str, after: str) -> int:
        index = bisect_left(self.keys, prefix)
        if after and after >= prefix:
            index = max(index, bisect_left(self.keys, after))
            if index < len(self.keys) and self.keys[index] == after:
                index += 1
        return index

    def skip_past_prefix(self, index: int, prefix: str) -> int:
        """First index at or after `index` whose key does not start with `prefix`."""
        last = ord(prefix[-1])
        if last == 0x10FFFF:
            return len(self.keys)
        return max(index, bisect_left(self.keys, prefix[:-1] + chr(last + 1)))


@dataclass
class Branch:
    name: str
    head: str
    hidden: bool = False
    staging: dict[str, Optional[Entry]] = field(default_factory=dict)
    staging_version: int = 0
    view_cache: Optional[tuple[int, str, SortedKeys]] = None

    def touch(self) -> None:
        self.staging_version += 1


@dataclass
class Repository:
    id: str
    default_branch: str
    storage_namespace: str
    creation_date: int
    read_only: bool = False
    branches: dict[str, Branch] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    protection: list[str] = field(default_factory=list)
    protection_version: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "creation_date": self.creation_date,
            "default_branch": self.default_branch,
            "storage_namespace": self.storage_namespace,
            "read_only": self.read_only,
        }
