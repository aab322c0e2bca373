"""The store's shared core: the lock, trees, commit creation, ref resolution and guards.

Every operation of the store takes this one lock, so each head move (commit, merge, hard reset,
revert) is atomic with respect to every other request, as lakeFS's conditional branch update
makes it. Object bytes never pass through the store: uploads are ingested into the blob store
before the lock is taken and only the resulting `Entry` is staged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from . import errors as e
from .errors import ApiError, bad_request, forbidden, not_found
from .model import Branch, Commit, Entry, Repository, SortedKeys, Tree, commit_id, tree_id
from .protection import is_protected
from .refs import COMMIT_ID, HEX_PREFIX, RefExpr, parse_ref

EMPTY_TREE: dict[str, Entry] = {}
_TREE_KEY_CACHE = 128


class View:
    """What a ref shows to object reads: a committed tree, plus staging for a branch ref.

    The sorted key list is built only when a listing asks for it, so point reads of a branch
    that is being written stay O(1).
    """

    def __init__(
        self, tree: Tree, staging: Optional[dict[str, Optional[Entry]]], keys: Callable[[], SortedKeys]
    ) -> None:
        self.tree = tree
        self.staging = staging
        self._keys = keys

    @property
    def keys(self) -> SortedKeys:
        return self._keys()

    def get(self, path: str) -> Optional[Entry]:
        if self.staging is not None and path in self.staging:
            return self.staging[path]
        return self.tree.get(path)


@dataclass(frozen=True)
class MergeEvent:
    """What a pre-merge hook sees: the new commit exists, the destination has not moved yet."""

    repository: str
    source_ref: str
    destination_branch: str
    commit: Commit


PreMergeHook = Callable[[MergeEvent], Optional[str]]


class StoreCore:
    """State and helpers every group of operations shares; helpers expect `lock` to be held."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._repos: dict[str, Repository] = {}
        self._trees: dict[str, dict[str, Entry]] = {tree_id(EMPTY_TREE): EMPTY_TREE}
        self._tree_keys: dict[str, SortedKeys] = {}
        self._last_ns = 0
        self.pre_merge_hook: Optional[PreMergeHook] = None

    @property
    def empty(self) -> bool:
        return not self._repos

    # ---------------------------------------------------------------- lookups

    def repo(self, name: str) -> Repository:
        repo = self._repos.get(name)
        if repo is None:
            raise not_found("repository not found")
        return repo

    def branch(self, repo: Repository, name: str) -> Branch:
        branch = repo.branches.get(name)
        if branch is None:
            raise not_found("branch not found")
        return branch

    def tree(self, commit: Commit) -> dict[str, Entry]:
        return self._trees[commit.meta_range_id]

    def _now_ns(self) -> int:
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return self._last_ns

    def _keys_of_tree(self, tid: str) -> SortedKeys:
        keys = self._tree_keys.get(tid)
        if keys is None:
            if len(self._tree_keys) >= _TREE_KEY_CACHE:
                self._tree_keys.pop(next(iter(self._tree_keys)))
            keys = self._tree_keys[tid] = SortedKeys(sorted(self._trees[tid]))
        return keys

    def _store_tree(self, tree: dict[str, Entry]) -> str:
        tid = tree_id(tree)
        self._trees.setdefault(tid, tree)
        return tid

    def _new_commit(
        self,
        repo: Repository,
        parents: tuple[str, ...],
        committer: str,
        message: str,
        tree: dict[str, Entry],
        metadata: dict[str, str],
        date: Optional[int] = None,
        generation_of: tuple[str, ...] = (),
    ) -> Commit:
        """`generation_of` lists the commits the generation derives from when they are not all
        parents (a squash merge still counts its source)."""
        tid = self._store_tree(tree)
        creation_ns = self._now_ns()
        generation = max((repo.commits[p].generation for p in generation_of or parents), default=0) + 1
        meta = tuple(sorted(metadata.items()))
        cid = commit_id(parents, committer, message, creation_ns, tid, meta, generation)
        commit = Commit(
            id=cid,
            parents=parents,
            committer=committer,
            message=message,
            creation_ns=creation_ns,
            creation_date=date if date is not None else creation_ns // 1_000_000_000,
            meta_range_id=tid,
            metadata=meta,
            generation=generation,
        )
        repo.commits[cid] = commit
        return commit

    # ---------------------------------------------------------------- ref resolution

    def _base_commit_or_branch(self, repo: Repository, base: str) -> tuple[Optional[Branch], Commit]:
        if COMMIT_ID.fullmatch(base) and base in repo.commits:
            return None, repo.commits[base]
        branch = repo.branches.get(base)
        if branch is not None:
            return branch, repo.commits[branch.head]
        if base in repo.tags:
            return None, repo.commits[repo.tags[base]]
        if HEX_PREFIX.fullmatch(base):
            matches = [cid for cid in repo.commits if cid.startswith(base)]
            if len(matches) == 1:
                return None, repo.commits[matches[0]]
            if len(matches) > 1:
                raise not_found(f"reference is ambiguous: {base}: not found")
        raise not_found(f"{base}: not found")

    def _walk(self, repo: Repository, commit: Commit, expr: RefExpr) -> Commit:
        for kind, n in expr.steps:
            if kind == "~":
                for _ in range(n):
                    if not commit.parents:
                        raise not_found(f"{expr.base}: ancestor not found")
                    commit = repo.commits[commit.parents[0]]
            elif n:
                if n > len(commit.parents):
                    raise not_found(f"{expr.base}: parent {n} not found")
                commit = repo.commits[commit.parents[n - 1]]
        return commit

    def resolve_commit(self, repo: Repository, text: object, field: str = "ref", staging_status: int = 400) -> Commit:
        """Resolve a ref expression to a commit; a branch means its committed head."""
        expr = parse_ref(text, field)
        if expr.staging:
            raise ApiError(staging_status, "reference to staging area with $ is not a commit")
        _, commit = self._base_commit_or_branch(repo, expr.base)
        return self._walk(repo, commit, expr)

    def resolve_view(self, repo: Repository, text: object) -> View:
        """Resolve a ref for object reads: a plain branch ref includes uncommitted changes."""
        expr = parse_ref(text)
        branch, commit = self._base_commit_or_branch(repo, expr.base)
        if branch is not None and not expr.committed_only and not expr.steps and branch.staging:
            return self._branch_view(repo, branch)
        commit = self._walk(repo, commit, expr)
        return View(self.tree(commit), None, lambda: self._keys_of_tree(commit.meta_range_id))

    def _branch_view(self, repo: Repository, branch: Branch) -> View:
        head_tree_id = repo.commits[branch.head].meta_range_id
        tree = self._trees[head_tree_id]

        def keys() -> SortedKeys:
            cache = branch.view_cache
            if cache is None or cache[0] != branch.staging_version or cache[1] != head_tree_id:
                merged = set(tree)
                for path, entry in branch.staging.items():
                    if entry is None:
                        merged.discard(path)
                    else:
                        merged.add(path)
                cache = branch.view_cache = (branch.staging_version, head_tree_id, SortedKeys(sorted(merged)))
            return cache[2]

        return View(tree, branch.staging, keys)

    # ---------------------------------------------------------------- guards

    @staticmethod
    def _writable(repo: Repository, force: bool) -> None:
        if repo.read_only and not force:
            raise forbidden(e.READ_ONLY_REPOSITORY)

    @staticmethod
    def _unprotected(repo: Repository, branch: Branch, message: str = e.WRITE_PROTECTED) -> None:
        if is_protected(repo.protection, branch.name):
            raise forbidden(message)

    @staticmethod
    def _clean(branch: Branch) -> None:
        if branch.staging:
            raise bad_request(e.DIRTY_BRANCH)
