"""Repositories, branches, tags and the commit graph, with lakeFS's rules and status codes.

Every operation takes one store-wide lock, so each head move (commit, merge, hard reset,
revert) is atomic with respect to every other request, as lakeFS's conditional branch update
makes it. Object bytes never pass through here: uploads are ingested into the blob store
before the lock is taken and only the resulting `Entry` is staged.
"""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from . import errors as e
from .errors import ApiError, bad_request, conflict, forbidden, not_found
from .listing import page_keys, page_sorted
from .model import Branch, Commit, Entry, Repository, SortedKeys, Tree, commit_id, tree_id
from .protection import is_protected
from .refs import COMMIT_ID, HEX_PREFIX, RefExpr, check_branch_id, check_repository_id, check_tag_id, parse_ref
from .trees import diff, merge3

FIRST_COMMIT_MESSAGE = "Repository created"
MERGE_STRATEGY_KEY = ".lakefs.merge.strategy"
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


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._repos: dict[str, Repository] = {}
        self._trees: dict[str, dict[str, Entry]] = {tree_id(EMPTY_TREE): EMPTY_TREE}
        self._tree_keys: dict[str, SortedKeys] = {}
        self._last_ns = 0
        self.pre_merge_hook: Optional[PreMergeHook] = None

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

    # ---------------------------------------------------------------- repositories

    def create_repository(
        self, name: object, storage_namespace: object, default_branch: object, read_only: bool, user: str
    ) -> Repository:
        check_repository_id(name)
        if not isinstance(storage_namespace, str) or not storage_namespace:
            raise bad_request("storage_namespace: required value")
        check_branch_id(default_branch, "default_branch")
        assert isinstance(name, str) and isinstance(default_branch, str)
        with self.lock:
            if name in self._repos:
                raise conflict("repository already exists: not unique")
            repo = Repository(
                id=name,
                default_branch=default_branch,
                storage_namespace=storage_namespace,
                creation_date=int(time.time()),
                read_only=read_only,
            )
            first = self._new_commit(repo, (), user, FIRST_COMMIT_MESSAGE, {}, {})
            repo.branches[default_branch] = Branch(name=default_branch, head=first.id)
            self._repos[name] = repo
            return repo

    def get_repository(self, name: str) -> Repository:
        with self.lock:
            return self.repo(name)

    def list_repositories(self, prefix: str, after: str, amount: int) -> tuple[list[Repository], bool]:
        with self.lock:
            repos = [self._repos[name] for name in sorted(self._repos)]
        return page_sorted(repos, lambda r: r.id, prefix, after, amount)

    def repository_metadata(self, name: str, set_: Optional[dict[str, str]] = None, delete: tuple[str, ...] = ()) -> dict[str, str]:
        with self.lock:
            repo = self.repo(name)
            repo.metadata.update(set_ or {})
            for key in delete:
                repo.metadata.pop(key, None)
            return dict(repo.metadata)

    def delete_repository(self, name: str) -> None:
        with self.lock:
            self.repo(name)
            del self._repos[name]

    # ---------------------------------------------------------------- branches and tags

    def create_branch(self, repo_name: str, name: object, source: object, hidden: bool, force: bool) -> Commit:
        check_branch_id(name)
        assert isinstance(name, str)
        with self.lock:
            repo = self.repo(repo_name)
            self._writable(repo, force)
            commit = self.resolve_commit(repo, source, "source", staging_status=500)
            if name in repo.branches:
                raise conflict("branch already exists: not unique")
            if name in repo.tags or name in repo.commits:
                raise conflict(f"branch name {name!r} clashes with an existing tag or commit ID: not unique")
            repo.branches[name] = Branch(name=name, head=commit.id, hidden=hidden)
            return commit

    def get_branch(self, repo_name: str, name: str) -> Branch:
        with self.lock:
            return self.branch(self.repo(repo_name), name)

    def list_branches(
        self, repo_name: str, prefix: str, after: str, amount: int, show_hidden: bool
    ) -> tuple[list[Branch], bool]:
        with self.lock:
            repo = self.repo(repo_name)
            branches = [repo.branches[n] for n in sorted(repo.branches) if show_hidden or not repo.branches[n].hidden]
        return page_sorted(branches, lambda b: b.name, prefix, after, amount)

    def delete_branch(self, repo_name: str, name: str, force: bool) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            self.branch(repo, name)
            self._writable(repo, force)
            if name == repo.default_branch:
                raise forbidden("cannot delete repository default branch")
            del repo.branches[name]

    def create_tag(self, repo_name: str, name: object, ref: object, force: bool) -> Commit:
        check_tag_id(name)
        assert isinstance(name, str)
        with self.lock:
            repo = self.repo(repo_name)
            self._writable(repo, force)
            commit = self.resolve_commit(repo, ref)
            if name in repo.tags and not force:
                raise conflict("tag already exists: not unique")
            repo.tags[name] = commit.id
            return commit

    def get_tag(self, repo_name: str, name: str) -> str:
        with self.lock:
            repo = self.repo(repo_name)
            if name not in repo.tags:
                raise not_found("tag not found")
            return repo.tags[name]

    def list_tags(self, repo_name: str, prefix: str, after: str, amount: int) -> tuple[list[tuple[str, str]], bool]:
        with self.lock:
            repo = self.repo(repo_name)
            tags = sorted(repo.tags.items())
        return page_sorted(tags, lambda t: t[0], prefix, after, amount)

    def delete_tag(self, repo_name: str, name: str, force: bool) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            self._writable(repo, force)
            if repo.tags.pop(name, None) is None:
                raise not_found("tag not found")

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

    # ---------------------------------------------------------------- protection

    def protection(self, repo_name: str) -> tuple[list[str], str]:
        with self.lock:
            repo = self.repo(repo_name)
            return list(repo.protection), f'"{repo.protection_version}"'

    def set_protection(self, repo_name: str, patterns: list[str], if_match: Optional[str]) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            if if_match is not None and if_match.strip() != f'"{repo.protection_version}"':
                raise ApiError(412, "precondition failed: branch protection rules changed (If-Match)")
            repo.protection = list(patterns)
            repo.protection_version += 1

    def add_protection(self, repo_name: str, pattern: str) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            if pattern in repo.protection:
                raise conflict("rule already exists: not unique")
            repo.protection.append(pattern)
            repo.protection_version += 1

    def remove_protection(self, repo_name: str, pattern: str) -> None:
        with self.lock:
            repo = self.repo(repo_name)
            if pattern not in repo.protection:
                raise not_found("rule not found")
            repo.protection.remove(pattern)
            repo.protection_version += 1


def _desc(text: str) -> tuple[int, ...]:
    """Heap key that orders hex IDs descending (heapq is a min-heap)."""
    return tuple(-ord(c) for c in text)
