"""Repositories, branches, tags, branch protection rules and repository metadata."""

from __future__ import annotations

import time
from typing import Optional

from .core import StoreCore
from .errors import ApiError, bad_request, conflict, forbidden, not_found
from .listing import page_sorted
from .model import Branch, Commit, Repository
from .refs import check_branch_id, check_repository_id, check_tag_id

FIRST_COMMIT_MESSAGE = "Repository created"


class RepositoryOps(StoreCore):
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
