"""Commits, log, merge base, merge, hard reset, revert, cherry-pick and ref diffs."""

from __future__ import annotations

import heapq
from typing import Iterator, Optional

from . import errors as e
from .core import EMPTY_TREE, MergeEvent, StoreCore
from .errors import ApiError, bad_request, conflict
from .model import Commit, Entry, Repository, tree_id
from .trees import diff, merge3

MERGE_STRATEGY_KEY = ".lakefs.merge.strategy"


class HistoryOps(StoreCore):
    def diff_refs(self, repo_name: str, left: str, right: str, kind: str) -> list[tuple[str, str, Optional[Entry]]]:
        with self.lock:
            repo = self.repo(repo_name)
            left_commit = self.resolve_commit(repo, left, "leftRef")
            right_commit = self.resolve_commit(repo, right, "rightRef")
            if kind == "two_dot":
                base = left_commit
            elif kind == "three_dot":
                base = self._merge_base(repo, left_commit, right_commit)
            else:
                raise bad_request("type: must be two_dot or three_dot")
            before, after = self.tree(base), self.tree(right_commit)
        return list(diff(before, after))

    # ---------------------------------------------------------------- commits

    def commit(
        self,
        repo_name: str,
        branch_name: str,
        message: str,
        metadata: dict[str, str],
        date: Optional[int],
        allow_empty: bool,
        force: bool,
        user: str,
    ) -> Commit:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            self._unprotected(repo, branch, e.COMMIT_PROTECTED)
            head = repo.commits[branch.head]
            tree = dict(self.tree(head))
            for path, entry in branch.staging.items():
                if entry is None:
                    tree.pop(path, None)
                else:
                    tree[path] = entry
            if tree_id(tree) == head.meta_range_id and not allow_empty:
                raise bad_request(e.NO_CHANGES)
            commit = self._new_commit(repo, (head.id,), user, message, tree, metadata, date)
            branch.head = commit.id
            branch.staging = {}
            branch.touch()
            return commit

    def get_commit(self, repo_name: str, ref: str) -> Commit:
        with self.lock:
            return self.resolve_commit(self.repo(repo_name), ref, "commitId")

    def log(
        self,
        repo_name: str,
        ref: str,
        first_parent: bool,
        objects: list[str],
        prefixes: list[str],
        stop_at: Optional[str],
    ) -> Iterator[Commit]:
        """Commits reachable from `ref`, newest first (creation time, then ID, descending)."""
        with self.lock:
            repo = self.repo(repo_name)
            start = self.resolve_commit(repo, ref)
            stop = self.resolve_commit(repo, stop_at, "stop_at").id if stop_at else None
            commits = dict(repo.commits)
        filtered = bool(objects or prefixes)
        queue = [(-start.creation_ns, _desc(start.id), start.id)]
        seen = {start.id}
        while queue:
            _, _, cid = heapq.heappop(queue)
            commit = commits[cid]
            if not filtered or self._touches(commits, commit, objects, prefixes):
                yield commit
            if cid == stop:
                return
            for parent in commit.parents[:1] if first_parent else commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(queue, (-commits[parent].creation_ns, _desc(parent), parent))

    def _touches(self, commits: dict[str, Commit], commit: Commit, objects: list[str], prefixes: list[str]) -> bool:
        before = self._trees[commits[commit.parents[0]].meta_range_id] if commit.parents else EMPTY_TREE
        for path, _, _ in diff(before, self._trees[commit.meta_range_id]):
            if path in objects or any(path.startswith(p) for p in prefixes):
                return True
        return False

    def _ancestors(self, repo: Repository, commit: Commit) -> set[str]:
        seen = {commit.id}
        stack = [commit.id]
        while stack:
            for parent in repo.commits[stack.pop()].parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def _merge_base(self, repo: Repository, a: Commit, b: Commit) -> Commit:
        """The common ancestor with the highest generation (lakeFS's merge base)."""
        reachable = self._ancestors(repo, a)
        queue = [(-b.generation, b.id)]
        seen = {b.id}
        while queue:
            _, cid = heapq.heappop(queue)
            if cid in reachable:
                return repo.commits[cid]
            for parent in repo.commits[cid].parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(queue, (-repo.commits[parent].generation, parent))
        raise bad_request("no merge base")

    def find_merge_base(self, repo_name: str, source: str, destination: str) -> tuple[Commit, Commit, Commit]:
        with self.lock:
            repo = self.repo(repo_name)
            src = self.resolve_commit(repo, source, "sourceRef")
            dst = self.resolve_commit(repo, destination, "destinationBranch")
            return src, dst, self._merge_base(repo, src, dst)

    def merge(
        self,
        repo_name: str,
        source_ref: str,
        destination: str,
        message: Optional[str],
        metadata: dict[str, str],
        strategy: Optional[str],
        force: bool,
        allow_empty: bool,
        squash: bool,
        user: str,
    ) -> Commit:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, destination)
            self._writable(repo, force)
            if strategy not in (None, "dest-wins", "source-wins"):
                raise bad_request(f"merge strategy: invalid value {strategy!r}")
            self._clean(branch)
            source = self.resolve_commit(repo, source_ref, "sourceRef")
            dest = repo.commits[branch.head]
            base = self._merge_base(repo, source, dest)
            if source.meta_range_id == base.meta_range_id and not (allow_empty or force):
                raise bad_request(e.NO_CHANGES)
            if dest.meta_range_id == base.meta_range_id:
                tree = self.tree(source)
            else:
                tree, conflicts = merge3(self.tree(base), self.tree(dest), self.tree(source), strategy)
                if conflicts:
                    raise ApiError(409, e.CONFLICT_FOUND, body={"reference": ""})
            meta = dict(metadata)
            meta[MERGE_STRATEGY_KEY] = strategy or "default"
            parents = (dest.id,) if squash else (dest.id, source.id)
            text = message or f"Merge '{source_ref}' into '{destination}'"
            commit = self._new_commit(repo, parents, user, text, dict(tree), meta, generation_of=(dest.id, source.id))
            if self.pre_merge_hook is not None:
                reason = self.pre_merge_hook(MergeEvent(repo.id, source_ref, destination, commit))
                if reason is not None:
                    raise ApiError(412, f"pre-merge hook aborted, run id 'emulator': {reason}")
            branch.head = commit.id
            branch.touch()
            return commit

    def hard_reset(self, repo_name: str, branch_name: str, ref: str, force: bool) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._unprotected(repo, branch)
            self._unprotected(repo, branch, e.COMMIT_PROTECTED)
            self._writable(repo, force)
            commit = self.resolve_commit(repo, ref)
            self._clean(branch)
            branch.head = commit.id
            branch.touch()

    def revert(
        self,
        repo_name: str,
        branch_name: str,
        ref: str,
        parent_number: int,
        allow_empty: bool,
        force: bool,
        message: Optional[str],
        metadata: dict[str, str],
        user: str,
    ) -> Commit:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            target = self.resolve_commit(repo, ref)
            parents = target.parents
            if len(parents) > 1 and parent_number < 1:
                raise conflict("must specify 1-based parent number for reverting merge commit")
            if parent_number > max(len(parents), 1) or parent_number < 0:
                raise bad_request("given commit does not have the given parent number")
            self._clean(branch)
            index = max(parent_number, 1) - 1
            parent_tree = self.tree(repo.commits[parents[index]]) if parents else EMPTY_TREE
            head = repo.commits[branch.head]
            tree, conflicts = merge3(self.tree(target), self.tree(head), parent_tree, None)
            if conflicts:
                raise conflict(e.CONFLICT_FOUND)
            if tree_id(tree) == head.meta_range_id and not allow_empty:
                raise bad_request(e.NO_CHANGES)
            commit = self._new_commit(repo, (head.id,), user, message or f"Revert {ref}", tree, metadata)
            branch.head = commit.id
            branch.touch()
            return commit

    def cherry_pick(
        self, repo_name: str, branch_name: str, ref: str, parent_number: Optional[int], force: bool,
        message: Optional[str], metadata: Optional[dict[str, str]], user: str,
    ) -> Commit:
        """Apply the change `ref` made relative to its parent onto the branch head."""
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            self._unprotected(repo, branch, e.COMMIT_PROTECTED)
            picked = self.resolve_commit(repo, ref)
            parents = picked.parents
            if len(parents) > 1 and not parent_number:
                raise bad_request("cherry-pick of a merge commit needs a 1-based parent_number")
            number = parent_number or 1
            if number < 1 or (parents and number > len(parents)) or (not parents and number > 1):
                raise bad_request("given commit does not have the given parent number")
            self._clean(branch)
            parent_tree = self.tree(repo.commits[parents[number - 1]]) if parents else EMPTY_TREE
            head = repo.commits[branch.head]
            tree, conflicts = merge3(parent_tree, self.tree(head), self.tree(picked), None)
            if conflicts:
                raise conflict(e.CONFLICT_FOUND)
            if tree_id(tree) == head.meta_range_id:
                raise bad_request(e.NO_CHANGES)
            commit = self._new_commit(
                repo, (head.id,), user, message or picked.message, tree,
                dict(picked.metadata) if metadata is None else metadata,
            )
            branch.head = commit.id
            branch.touch()
            return commit


def _desc(text: str) -> tuple[int, ...]:
    """Heap key that orders hex IDs descending (heapq is a min-heap)."""
    return tuple(-ord(c) for c in text)
