"""Objects on a branch: the uncommitted staging area of puts and tombstones, and reads through refs."""

from __future__ import annotations

from typing import Optional

from .core import StoreCore
from .errors import ApiError, bad_request, not_found
from .listing import page_keys
from .model import Branch, Entry, Repository


class StagingOps(StoreCore):
    # ---------------------------------------------------------------- objects

    def list_objects(
        self, repo_name: str, ref: str, prefix: str, after: str, delimiter: str, amount: int
    ) -> tuple[list[tuple[str, Optional[Entry]]], bool]:
        """One page of (path, entry) pairs; entry is None for a common prefix."""
        with self.lock:
            view = self.resolve_view(self.repo(repo_name), ref)
            keys, has_more = page_keys(view.keys, prefix, after, delimiter, amount)
            return [(path, None if common else view.get(path)) for path, common in keys], has_more

    def stat(self, repo_name: str, ref: str, path: str) -> Entry:
        with self.lock:
            entry = self.resolve_view(self.repo(repo_name), ref).get(path)
        if entry is None:
            raise not_found("object not found")
        return entry

    def check_object_write(self, repo_name: str, branch_name: str, force: bool) -> None:
        """The cheap checks done before an upload body is read (the same run again on apply)."""
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            self._unprotected(repo, branch)

    def put_object(
        self,
        repo_name: str,
        branch_name: str,
        path: str,
        entry: Entry,
        force: bool,
        if_none_match: Optional[str] = None,
        if_match: Optional[str] = None,
    ) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            self._unprotected(repo, branch)
            if if_none_match is not None or if_match is not None:
                current = self._branch_view(repo, branch).get(path)
                if if_none_match is not None and current is not None:
                    raise ApiError(412, "precondition failed: object exists (If-None-Match: *)")
                if if_match is not None and (current is None or current.checksum != if_match.strip().strip('"')):
                    raise ApiError(412, "precondition failed: ETag does not match (If-Match)")
            branch.staging[path] = entry
            branch.touch()

    def _stage_delete(self, repo: Repository, branch: Branch, path: str) -> None:
        if path in self.tree(repo.commits[branch.head]):
            branch.staging[path] = None
        else:
            branch.staging.pop(path, None)
        branch.touch()

    def delete_objects(self, repo_name: str, branch_name: str, paths: list[str], force: bool) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            self._unprotected(repo, branch)
            for path in paths:
                self._stage_delete(repo, branch, path)

    def copy_object(
        self, repo_name: str, branch_name: str, dest_path: str, src_ref: str, src_path: str, now: int, force: bool
    ) -> Entry:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            source = self.resolve_view(repo, src_ref).get(src_path)
            if source is None:
                raise not_found("object not found")
            self._writable(repo, force)
            self._unprotected(repo, branch)
            entry = Entry(source.address, source.checksum, source.size, now, source.content_type, source.metadata)
            branch.staging[dest_path] = entry
            branch.touch()
            return entry

    def reset_uncommitted(self, repo_name: str, branch_name: str, kind: object, path: object, force: bool) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            self._writable(repo, force)
            self._unprotected(repo, branch)
            if kind == "reset":
                branch.staging.clear()
            elif kind == "object" and isinstance(path, str):
                branch.staging.pop(path, None)
            elif kind == "common_prefix" and isinstance(path, str):
                for key in [k for k in branch.staging if k.startswith(path)]:
                    del branch.staging[key]
            else:
                raise bad_request("type: must be one of reset, object, common_prefix (object/common_prefix need path)")
            branch.touch()

    def diff_uncommitted(self, repo_name: str, branch_name: str) -> list[tuple[str, str, Optional[Entry]]]:
        with self.lock:
            repo = self.repo(repo_name)
            branch = self.branch(repo, branch_name)
            tree = self.tree(repo.commits[branch.head])
            staged = dict(branch.staging)
        changes = []
        for path in sorted(staged):
            after, before = staged[path], tree.get(path)
            if after is None:
                if before is not None:
                    changes.append((path, "removed", before))
            elif before is None:
                changes.append((path, "added", after))
            elif before.identity != after.identity:
                changes.append((path, "changed", after))
        return changes
