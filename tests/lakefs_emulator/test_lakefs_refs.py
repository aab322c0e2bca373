"""Repositories, branches (paging, hidden, deletion) and tags through the official clients."""

from __future__ import annotations

import json
import re

import lakefs
import lakefs_sdk
import pytest
from lakefs_sdk.client import LakeFSClient
from lakefs_helpers import api_error, commit, upload

HEX64 = re.compile(r"[0-9a-f]{64}")


def test_create_repository_with_default_branch_and_initial_commit(sdk: LakeFSClient) -> None:
    created = sdk.repositories_api.create_repository(
        lakefs_sdk.RepositoryCreation(name="with-trunk", storage_namespace="local://trunk", default_branch="trunk")
    )
    assert (created.id, created.default_branch, created.storage_namespace) == ("with-trunk", "trunk", "local://trunk")
    fetched = sdk.repositories_api.get_repository("with-trunk")
    assert fetched.default_branch == "trunk" and fetched.creation_date == created.creation_date
    head = sdk.branches_api.get_branch("with-trunk", "trunk")
    assert HEX64.fullmatch(head.commit_id)
    first = sdk.commits_api.get_commit("with-trunk", head.commit_id)
    assert first.parents == [] and first.message == "Repository created"
    assert sdk.objects_api.list_objects("with-trunk", "trunk").results == []


def test_repository_errors(sdk: LakeFSClient, repo_name: str) -> None:
    error = api_error(409, sdk.repositories_api.create_repository,
                      lakefs_sdk.RepositoryCreation(name=repo_name, storage_namespace="local://again"))
    assert "message" in json.loads(error.body)
    api_error(404, sdk.repositories_api.get_repository, "no-such-repo")
    api_error(404, sdk.branches_api.get_branch, "no-such-repo", "main")


def test_high_level_repository_create_and_exist_ok(client: lakefs.Client) -> None:
    repo = lakefs.Repository("hl-repo", client=client).create(storage_namespace="local://hl", default_branch="dev")
    assert repo.properties.default_branch == "dev"
    again = lakefs.Repository("hl-repo", client=client).create(storage_namespace="local://hl", exist_ok=True)
    assert again.properties.default_branch == "dev"
    with pytest.raises(lakefs.exceptions.ConflictException):
        lakefs.Repository("hl-repo", client=client).create(storage_namespace="local://hl")
    assert "hl-repo" in [r.id for r in lakefs.repositories(client=client)]


def test_create_branch_from_branch_commit_and_tag(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "a", b"1")
    first = commit(sdk, repo_name, "main", "one")
    upload(sdk, repo_name, "main", "a", b"2")
    commit(sdk, repo_name, "main", "two")
    created = sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="from-commit", source=first.id))
    assert created == first.id  # 201 with the source commit ID as plain text
    assert sdk.branches_api.get_branch(repo_name, "from-commit").commit_id == first.id
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="from-short", source=first.id[:10]))
    assert sdk.branches_api.get_branch(repo_name, "from-short").commit_id == first.id
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="from-parent", source="main~1"))
    assert sdk.branches_api.get_branch(repo_name, "from-parent").commit_id == first.id
    sdk.tags_api.create_tag(repo_name, lakefs_sdk.TagCreation(id="v1", ref=first.id))
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="from-tag", source="v1"))
    assert sdk.branches_api.get_branch(repo_name, "from-tag").commit_id == first.id


def test_new_branch_does_not_see_source_uncommitted_changes(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "dirty", b"x")
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="child", source="main"))
    assert sdk.objects_api.list_objects(repo_name, "child").results == []


@pytest.mark.parametrize(
    ("name", "source", "status"),
    [
        ("main", "main", 409),
        ("bad name", "main", 400),
        ("-dash", "main", 400),
        ("ok", "missing", 404),
        ("ok", "main$", 500),
        ("ok", "has space", 400),
    ],
)
def test_create_branch_errors(sdk: LakeFSClient, repo_name: str, name: str, source: str, status: int) -> None:
    error = api_error(status, sdk.branches_api.create_branch, repo_name, lakefs_sdk.BranchCreation(name=name, source=source))
    assert isinstance(json.loads(error.body)["message"], str)


def test_branch_name_clashing_with_tag_or_commit_is_409(sdk: LakeFSClient, repo_name: str) -> None:
    head = sdk.branches_api.get_branch(repo_name, "main").commit_id
    sdk.tags_api.create_tag(repo_name, lakefs_sdk.TagCreation(id="release", ref="main"))
    api_error(409, sdk.branches_api.create_branch, repo_name, lakefs_sdk.BranchCreation(name="release", source="main"))
    api_error(409, sdk.branches_api.create_branch, repo_name, lakefs_sdk.BranchCreation(name=head, source="main"))


def test_list_branches_pages_with_amount_after_prefix(sdk: LakeFSClient, repo_name: str) -> None:
    for name in ["b-3", "b-1", "a-1", "b-2", "c-1"]:
        sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name=name, source="main"))
    page = sdk.branches_api.list_branches(repo_name, amount=2)
    assert [r.id for r in page.results] == ["a-1", "b-1"]
    assert page.pagination.has_more and page.pagination.next_offset == "b-1"
    assert page.pagination.results == 2 and page.pagination.max_per_page == 1000
    page = sdk.branches_api.list_branches(repo_name, amount=2, after="b-1")
    assert [r.id for r in page.results] == ["b-2", "b-3"]
    page = sdk.branches_api.list_branches(repo_name, amount=2, after="b-3")
    assert [r.id for r in page.results] == ["c-1", "main"]
    assert not page.pagination.has_more and page.pagination.next_offset == ""
    assert [r.id for r in sdk.branches_api.list_branches(repo_name, prefix="b-").results] == ["b-1", "b-2", "b-3"]
    head = sdk.branches_api.get_branch(repo_name, "main").commit_id
    assert all(r.commit_id == head for r in sdk.branches_api.list_branches(repo_name).results)


def test_hidden_branches_are_listed_only_on_request(sdk: LakeFSClient, repo_name: str, repo: lakefs.Repository) -> None:
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="stage-1", source="main", hidden=True))
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="visible", source="main"))
    assert [r.id for r in sdk.branches_api.list_branches(repo_name).results] == ["main", "visible"]
    shown = sdk.branches_api.list_branches(repo_name, show_hidden=True)
    assert [r.id for r in shown.results] == ["main", "stage-1", "visible"]
    assert sdk.branches_api.get_branch(repo_name, "stage-1").id == "stage-1"
    upload(sdk, repo_name, "stage-1", "f", b"hidden data")
    assert commit(sdk, repo_name, "stage-1").parents == [sdk.branches_api.get_branch(repo_name, "main").commit_id]
    assert [b.id for b in repo.branches()] == ["main", "visible"]


def test_delete_branch(sdk: LakeFSClient, repo_name: str, repo: lakefs.Repository) -> None:
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="gone", source="main"))
    upload(sdk, repo_name, "gone", "uncommitted", b"x")
    sdk.branches_api.delete_branch(repo_name, "gone")
    api_error(404, sdk.branches_api.get_branch, repo_name, "gone")
    api_error(404, sdk.branches_api.delete_branch, repo_name, "gone")
    error = api_error(403, sdk.branches_api.delete_branch, repo_name, "main")
    assert "default branch" in json.loads(error.body)["message"]
    # re-created branch starts clean: the uncommitted object went with the old one
    branch = repo.branch("gone").create("main")
    assert list(branch.objects()) == []
    branch.delete()
    assert not any(b.id == "gone" for b in repo.branches())


def test_high_level_branch_create_exist_ok(repo: lakefs.Repository) -> None:
    branch = repo.branch("feature").create("main")
    assert branch.head.id == repo.branch("main").head.id
    with pytest.raises(lakefs.exceptions.ConflictException):
        repo.branch("feature").create("main")
    assert repo.branch("feature").create("main", exist_ok=True).id == "feature"


def test_tags(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "a", b"1")
    first = commit(sdk, repo_name, "main")
    created = sdk.tags_api.create_tag(repo_name, lakefs_sdk.TagCreation(id="v1", ref="main"))
    assert (created.id, created.commit_id) == ("v1", first.id)
    assert sdk.tags_api.get_tag(repo_name, "v1").commit_id == first.id
    api_error(409, sdk.tags_api.create_tag, repo_name, lakefs_sdk.TagCreation(id="v1", ref="main"))
    sdk.tags_api.create_tag(repo_name, lakefs_sdk.TagCreation(id="v0", ref="main~1"))
    assert [t.id for t in sdk.tags_api.list_tags(repo_name).results] == ["v0", "v1"]
    assert sdk.commits_api.get_commit(repo_name, "v1").id == first.id
    sdk.tags_api.delete_tag(repo_name, "v1")
    api_error(404, sdk.tags_api.get_tag, repo_name, "v1")
