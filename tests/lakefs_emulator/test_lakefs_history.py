"""Commits, log, merges (squash, conflicts, no changes), hard reset, revert, branch protection."""

from __future__ import annotations

import json
import re

import lakefs
import lakefs_sdk
import pytest
from lakefs_sdk.client import LakeFSClient
from lakefs_helpers import api_error, commit, read, upload

from perago.testing import LakeFSEmulator

HEX64 = re.compile(r"[0-9a-f]{64}")


def branch(sdk: LakeFSClient, repo: str, name: str, source: str = "main", hidden: bool = False) -> str:
    return sdk.branches_api.create_branch(repo, lakefs_sdk.BranchCreation(name=name, source=source, hidden=hidden))


def head(sdk: LakeFSClient, repo: str, name: str) -> str:
    return sdk.branches_api.get_branch(repo, name).commit_id


def merge(sdk: LakeFSClient, repo: str, source: str, dest: str, **body: object) -> str:
    return sdk.refs_api.merge_into_branch(repo, source, dest, merge=lakefs_sdk.Merge(**body)).reference


def paths(sdk: LakeFSClient, repo: str, ref: str) -> list[str]:
    return [r.path for r in sdk.objects_api.list_objects(repo, ref, amount=1000).results]


# ---------------------------------------------------------------- commits and log


def test_commit_shape_parents_metadata(sdk: LakeFSClient, repo_name: str, emulator: LakeFSEmulator) -> None:
    parent = head(sdk, repo_name, "main")
    upload(sdk, repo_name, "main", "f", b"1")
    created = commit(sdk, repo_name, "main", "first change", metadata={"perago.task": "t1", "empty": ""})
    assert HEX64.fullmatch(created.id) and HEX64.fullmatch(created.meta_range_id)
    assert created.parents == [parent]
    assert created.message == "first change" and created.committer == emulator.user_id
    assert created.metadata == {"perago.task": "t1", "empty": ""}
    assert created.generation == 2 and created.version == 1
    assert head(sdk, repo_name, "main") == created.id
    fetched = sdk.commits_api.get_commit(repo_name, created.id)
    assert fetched == created
    assert sdk.commits_api.get_commit(repo_name, "main") == created
    assert sdk.commits_api.get_commit(repo_name, created.id[:12]) == created
    assert sdk.commits_api.get_commit(repo_name, "main~1").id == parent
    assert sdk.commits_api.get_commit(repo_name, "main^1").id == parent
    assert sdk.branches_api.diff_branch(repo_name, "main").results == []


def test_commit_date_override(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "f", b"1")
    assert commit(sdk, repo_name, "main", date=1_700_000_000).creation_date == 1_700_000_000


def test_commit_without_changes_is_400_unless_allow_empty(sdk: LakeFSClient, repo_name: str) -> None:
    error = api_error(400, commit, sdk, repo_name, "main")
    assert json.loads(error.body) == {"message": "no changes"}
    upload(sdk, repo_name, "main", "f", b"same")
    base = commit(sdk, repo_name, "main")
    upload(sdk, repo_name, "main", "f", b"same")  # identical identity: still no change
    api_error(400, commit, sdk, repo_name, "main")
    empty = commit(sdk, repo_name, "main", "empty", allow_empty=True)
    assert empty.parents == [base.id] and empty.meta_range_id == base.meta_range_id


def test_changed_metadata_or_content_type_is_a_change(sdk: LakeFSClient, repo: lakefs.Repository) -> None:
    obj = repo.branch("main").object("f")
    obj.upload(b"same", content_type="text/plain")
    repo.branch("main").commit("one")
    obj.upload(b"same", content_type="text/csv")
    assert repo.branch("main").commit("content type").get_commit().message == "content type"
    obj.upload(b"same", content_type="text/csv", metadata={"k": "v"})
    assert repo.branch("main").commit("metadata").get_commit().message == "metadata"


def test_commit_errors(sdk: LakeFSClient, repo_name: str) -> None:
    api_error(404, commit, sdk, repo_name, "no-such-branch")
    api_error(404, sdk.commits_api.get_commit, repo_name, "f" * 64)
    api_error(404, sdk.commits_api.get_commit, repo_name, "main~5")
    api_error(400, sdk.commits_api.get_commit, repo_name, "main$")


def test_log_newest_first_with_amount_and_after(sdk: LakeFSClient, repo_name: str) -> None:
    ids = [head(sdk, repo_name, "main")]
    for i in range(5):
        upload(sdk, repo_name, "main", f"f{i}", b"x")
        ids.append(commit(sdk, repo_name, "main", f"c{i}").id)
    newest_first = list(reversed(ids))
    log = sdk.refs_api.log_commits(repo_name, "main")
    assert [c.id for c in log.results] == newest_first and not log.pagination.has_more
    page = sdk.refs_api.log_commits(repo_name, "main", amount=2)
    assert [c.id for c in page.results] == newest_first[:2]
    assert page.pagination.has_more and page.pagination.next_offset == newest_first[1]
    page = sdk.refs_api.log_commits(repo_name, "main", amount=3, after=page.pagination.next_offset)
    assert [c.id for c in page.results] == newest_first[2:5]
    assert [c.id for c in sdk.refs_api.log_commits(repo_name, "main", objects=["f1"]).results] == [ids[2]]
    assert [c.id for c in sdk.refs_api.log_commits(repo_name, "main", stop_at=ids[3]).results] == newest_first[:3]


def test_log_follows_both_parents_of_a_merge(sdk: LakeFSClient, repo_name: str) -> None:
    branch(sdk, repo_name, "side")
    upload(sdk, repo_name, "side", "s", b"1")
    side = commit(sdk, repo_name, "side", "side work").id
    upload(sdk, repo_name, "main", "m", b"1")
    main = commit(sdk, repo_name, "main", "main work").id
    merged = merge(sdk, repo_name, "side", "main")
    everything = [c.id for c in sdk.refs_api.log_commits(repo_name, "main").results]
    assert everything[:3] == [merged, main, side]
    first_parent = [c.id for c in sdk.refs_api.log_commits(repo_name, "main", first_parent=True).results]
    assert side not in first_parent and first_parent[:2] == [merged, main]


# ---------------------------------------------------------------- merge


def test_squash_merge_into_unchanged_destination(sdk: LakeFSClient, repo_name: str, emulator: LakeFSEmulator) -> None:
    base = head(sdk, repo_name, "main")
    branch(sdk, repo_name, "stage", hidden=True)
    upload(sdk, repo_name, "stage", "out/result.txt", b"result")
    staged = commit(sdk, repo_name, "stage", "perago try")
    merged = merge(sdk, repo_name, "stage", "main", squash_merge=True)
    result = sdk.commits_api.get_commit(repo_name, merged)
    assert merged != staged.id  # never a fast-forward
    assert result.parents == [base]
    assert result.meta_range_id == staged.meta_range_id
    assert result.message == "Merge 'stage' into 'main'"
    assert result.metadata == {".lakefs.merge.strategy": "default"}
    assert result.committer == emulator.user_id
    assert head(sdk, repo_name, "main") == merged
    assert read(sdk, repo_name, "main", "out/result.txt") == b"result"


def test_merge_by_commit_id_with_message_metadata_and_two_parents(sdk: LakeFSClient, repo_name: str) -> None:
    base = head(sdk, repo_name, "main")
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "a", b"1")
    staged = commit(sdk, repo_name, "feature").id
    merged = merge(sdk, repo_name, staged, "main", message="publish", metadata={"perago.execution": "e1"})
    result = sdk.commits_api.get_commit(repo_name, merged)
    assert result.parents == [base, staged]
    assert result.message == "publish"
    assert result.metadata == {"perago.execution": "e1", ".lakefs.merge.strategy": "default"}


def test_merge_three_way_onto_moved_destination(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "shared", b"0")
    commit(sdk, repo_name, "main")
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "from-feature", b"f")
    sdk.objects_api.delete_object(repo_name, "feature", "shared")
    commit(sdk, repo_name, "feature")
    upload(sdk, repo_name, "main", "from-main", b"m")
    moved = commit(sdk, repo_name, "main").id
    merged = merge(sdk, repo_name, "feature", "main", squash_merge=True)
    assert sdk.commits_api.get_commit(repo_name, merged).parents == [moved]
    assert paths(sdk, repo_name, "main") == ["from-feature", "from-main"]


def test_merge_conflict_is_409_and_strategies_resolve_it(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "f", b"base")
    commit(sdk, repo_name, "main")
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "f", b"theirs")
    commit(sdk, repo_name, "feature")
    upload(sdk, repo_name, "main", "f", b"ours")
    before = commit(sdk, repo_name, "main").id
    error = api_error(409, merge, sdk, repo_name, "feature", "main", squash_merge=True)
    assert json.loads(error.body) == {"reference": ""}
    assert head(sdk, repo_name, "main") == before
    with pytest.raises(lakefs.exceptions.ConflictException):
        lakefs.Repository(repo_name, client=_hl(sdk)).branch("feature").merge_into("main")
    merge(sdk, repo_name, "feature", "main", strategy="dest-wins")
    assert read(sdk, repo_name, "main", "f") == b"ours"
    upload(sdk, repo_name, "feature", "f", b"theirs again")
    commit(sdk, repo_name, "feature")
    result = merge(sdk, repo_name, "feature", "main", strategy="source-wins")
    assert read(sdk, repo_name, "main", "f") == b"theirs again"
    assert sdk.commits_api.get_commit(repo_name, result).metadata[".lakefs.merge.strategy"] == "source-wins"


def test_change_against_delete_conflicts_identical_changes_do_not(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "f", b"base")
    upload(sdk, repo_name, "main", "g", b"base")
    commit(sdk, repo_name, "main")
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "g", b"same change")
    sdk.objects_api.delete_object(repo_name, "feature", "f")
    commit(sdk, repo_name, "feature")
    upload(sdk, repo_name, "main", "g", b"same change")
    commit(sdk, repo_name, "main")
    merge(sdk, repo_name, "feature", "main")  # identical change on g, delete on untouched f
    assert paths(sdk, repo_name, "main") == ["g"]
    branch(sdk, repo_name, "deleter")
    sdk.objects_api.delete_object(repo_name, "deleter", "g")
    commit(sdk, repo_name, "deleter")
    upload(sdk, repo_name, "main", "g", b"edited")
    commit(sdk, repo_name, "main")
    api_error(409, merge, sdk, repo_name, "deleter", "main")


def test_merge_without_changes_is_400(sdk: LakeFSClient, repo_name: str) -> None:
    branch(sdk, repo_name, "same")
    error = api_error(400, merge, sdk, repo_name, "same", "main", squash_merge=True)
    assert json.loads(error.body) == {"message": "no changes"}
    forced = merge(sdk, repo_name, "same", "main", allow_empty=True)
    assert sdk.commits_api.get_commit(repo_name, forced).parents[0] != forced


def test_merge_into_dirty_destination_is_400(sdk: LakeFSClient, repo_name: str) -> None:
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "a", b"1")
    commit(sdk, repo_name, "feature")
    upload(sdk, repo_name, "main", "uncommitted", b"1")
    error = api_error(400, merge, sdk, repo_name, "feature", "main")
    assert json.loads(error.body) == {"message": "uncommitted changes (dirty branch)"}


def test_merge_errors(sdk: LakeFSClient, repo_name: str) -> None:
    api_error(404, merge, sdk, repo_name, "nope", "main")
    api_error(404, merge, sdk, repo_name, "main", "nope")
    api_error(400, merge, sdk, repo_name, "main", "main", strategy="theirs")


def test_find_merge_base(sdk: LakeFSClient, repo_name: str) -> None:
    base = head(sdk, repo_name, "main")
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "a", b"1")
    commit(sdk, repo_name, "feature")
    found = sdk.refs_api.find_merge_base(repo_name, "feature", "main")
    assert found.base_commit_id == base and found.destination_commit_id == base


def test_diff_refs(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "keep", b"1")
    upload(sdk, repo_name, "main", "drop", b"1")
    commit(sdk, repo_name, "main")
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "keep", b"2")
    upload(sdk, repo_name, "feature", "new", b"1")
    sdk.objects_api.delete_object(repo_name, "feature", "drop")
    commit(sdk, repo_name, "feature")
    diff = sdk.refs_api.diff_refs(repo_name, "main", "feature")
    assert [(d.path, d.type) for d in diff.results] == [("drop", "removed"), ("keep", "changed"), ("new", "added")]


# ---------------------------------------------------------------- hard reset and revert


def test_hard_reset_moves_the_head(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "a", b"1")
    first = commit(sdk, repo_name, "main").id
    upload(sdk, repo_name, "main", "b", b"1")
    commit(sdk, repo_name, "main")
    sdk.experimental_api.hard_reset_branch(repo_name, "main", first, force=False)
    assert head(sdk, repo_name, "main") == first
    assert paths(sdk, repo_name, "main") == ["a"]
    api_error(404, sdk.experimental_api.hard_reset_branch, repo_name, "main", "f" * 64)
    api_error(404, sdk.experimental_api.hard_reset_branch, repo_name, "nope", first)
    api_error(400, sdk.experimental_api.hard_reset_branch, repo_name, "main", "main$")
    upload(sdk, repo_name, "main", "dirty", b"1")
    api_error(400, sdk.experimental_api.hard_reset_branch, repo_name, "main", first)


def test_revert_adds_an_undoing_commit(sdk: LakeFSClient, repo_name: str, emulator: LakeFSEmulator) -> None:
    upload(sdk, repo_name, "main", "a", b"1")
    commit(sdk, repo_name, "main")
    upload(sdk, repo_name, "main", "a", b"2")
    upload(sdk, repo_name, "main", "b", b"new")
    bad = commit(sdk, repo_name, "main").id
    upload(sdk, repo_name, "main", "c", b"later")
    later = commit(sdk, repo_name, "main").id
    sdk.branches_api.revert_branch(repo_name, "main", lakefs_sdk.RevertCreation(ref=bad, parent_number=0))
    reverted = sdk.commits_api.get_commit(repo_name, "main")
    assert reverted.parents == [later] and reverted.message == f"Revert {bad}"
    assert reverted.committer == emulator.user_id
    assert paths(sdk, repo_name, "main") == ["a", "c"]
    assert read(sdk, repo_name, "main", "a") == b"1"
    error = api_error(400, sdk.branches_api.revert_branch, repo_name, "main", lakefs_sdk.RevertCreation(ref=bad, parent_number=1))
    assert json.loads(error.body)["message"] == "no changes"


def test_revert_overrides_conflicts_and_merge_parents(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "f", b"1")
    commit(sdk, repo_name, "main")
    upload(sdk, repo_name, "main", "f", b"2")
    changed = commit(sdk, repo_name, "main").id
    upload(sdk, repo_name, "main", "f", b"3")
    commit(sdk, repo_name, "main")
    api_error(409, sdk.branches_api.revert_branch, repo_name, "main", lakefs_sdk.RevertCreation(ref=changed, parent_number=0))
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "g", b"1")
    commit(sdk, repo_name, "feature")
    merged = merge(sdk, repo_name, "feature", "main")
    api_error(409, sdk.branches_api.revert_branch, repo_name, "main", lakefs_sdk.RevertCreation(ref=merged, parent_number=0))
    sdk.branches_api.revert_branch(repo_name, "main", lakefs_sdk.RevertCreation(
        ref=merged, parent_number=1, commit_overrides=lakefs_sdk.CommitOverrides(message="undo", metadata={"why": "test"})))
    reverted = sdk.commits_api.get_commit(repo_name, "main")
    assert (reverted.message, reverted.metadata) == ("undo", {"why": "test"})
    assert paths(sdk, repo_name, "main") == ["f"]


# ---------------------------------------------------------------- branch protection


def test_branch_protection_blocks_writes_commits_resets_but_not_merge_or_revert(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "f", b"1")
    first = commit(sdk, repo_name, "main").id
    branch(sdk, repo_name, "feature")
    upload(sdk, repo_name, "feature", "g", b"1")
    commit(sdk, repo_name, "feature")
    sdk.repositories_api.set_branch_protection_rules(repo_name, [lakefs_sdk.BranchProtectionRule(pattern="ma?n")])
    assert [r.pattern for r in sdk.repositories_api.get_branch_protection_rules(repo_name)] == ["ma?n"]
    error = api_error(403, upload, sdk, repo_name, "main", "x", b"1")
    assert json.loads(error.body) == {"message": "cannot write to protected branch"}
    api_error(403, sdk.objects_api.delete_object, repo_name, "main", "f")
    api_error(403, sdk.objects_api.delete_objects, repo_name, "main", lakefs_sdk.PathList(paths=["f"]))
    error = api_error(403, commit, sdk, repo_name, "main", allow_empty=True)
    assert json.loads(error.body) == {"message": "cannot commit to protected branch"}
    api_error(403, sdk.branches_api.reset_branch, repo_name, "main", lakefs_sdk.ResetCreation(type="reset"))
    api_error(403, sdk.experimental_api.hard_reset_branch, repo_name, "main", first)
    merged = merge(sdk, repo_name, "feature", "main", squash_merge=True)
    assert head(sdk, repo_name, "main") == merged
    sdk.branches_api.revert_branch(repo_name, "main", lakefs_sdk.RevertCreation(ref=merged, parent_number=0))
    assert paths(sdk, repo_name, "main") == ["f"]
    upload(sdk, repo_name, "feature", "unprotected", b"ok")  # other branches unaffected
    sdk.repositories_api.set_branch_protection_rules(repo_name, [])
    upload(sdk, repo_name, "main", "x", b"1")


def test_protection_rules_etag_and_legacy_endpoints(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    response = sdk.repositories_api.get_branch_protection_rules_with_http_info(repo_name)
    etag = response.headers["ETag"]
    sdk.repositories_api.set_branch_protection_rules(repo_name, [lakefs_sdk.BranchProtectionRule(pattern="rel-*")], if_match=etag)
    api_error(412, sdk.repositories_api.set_branch_protection_rules, repo_name, [], if_match=etag)
    with pytest.warns(DeprecationWarning):  # the SDK marks the legacy rule endpoints deprecated
        sdk.internal_api.internal_create_branch_protection_rule(repo_name, lakefs_sdk.BranchProtectionRule(pattern="main"))
    with pytest.warns(DeprecationWarning):
        legacy = sdk.internal_api.internal_get_branch_protection_rules(repo_name)
    assert [r.pattern for r in legacy] == ["rel-*", "main"]
    branch(sdk, repo_name, "rel-1")
    api_error(403, upload, sdk, repo_name, "rel-1", "x", b"1")
    sdk.branches_api.delete_branch(repo_name, "rel-1")  # deletion is not blocked by protection


def _hl(sdk: LakeFSClient) -> lakefs.Client:
    config = sdk.repositories_api.api_client.configuration
    return lakefs.Client(host=config.host, username=config.username, password=config.password)


def test_squash_merge_generation_counts_the_source(sdk: LakeFSClient, repo_name: str) -> None:
    branch(sdk, repo_name, "long")
    for i in range(3):
        upload(sdk, repo_name, "long", f"f{i}", b"x")
        commit(sdk, repo_name, "long")
    assert sdk.commits_api.get_commit(repo_name, "long").generation == 4
    merged = merge(sdk, repo_name, "long", "main", squash_merge=True)
    result = sdk.commits_api.get_commit(repo_name, merged)
    assert result.generation == 5 and len(result.parents) == 1


def test_read_only_repository_refuses_writes_without_force(sdk: LakeFSClient) -> None:
    sdk.repositories_api.create_repository(
        lakefs_sdk.RepositoryCreation(name="frozen", storage_namespace="local://frozen", read_only=True))
    assert sdk.repositories_api.get_repository("frozen").read_only is True
    api_error(403, upload, sdk, "frozen", "main", "f", b"1")
    api_error(403, sdk.branches_api.create_branch, "frozen", lakefs_sdk.BranchCreation(name="b", source="main"))
    sdk.branches_api.create_branch("frozen", lakefs_sdk.BranchCreation(name="b", source="main", force=True))
    sdk.objects_api.upload_object("frozen", "b", "f", content=b"1", force=True)
    api_error(403, commit, sdk, "frozen", "b")
    commit(sdk, "frozen", "b", force=True)
    api_error(403, merge, sdk, "frozen", "b", "main")
    merged = merge(sdk, "frozen", "b", "main", force=True)
    assert head(sdk, "frozen", "main") == merged


def test_high_level_history_flow(repo: lakefs.Repository, sdk: LakeFSClient) -> None:
    main = repo.branch("main")
    main.object("data/a.txt").upload(b"a1")
    first = main.commit("first", metadata={"step": "1"})
    assert first.get_commit().metadata == {"step": "1"}
    feature = repo.branch("feature").create(main)
    feature.object("data/b.txt").upload(b"b1")
    assert [c.path for c in feature.uncommitted()] == ["data/b.txt"]
    picked = feature.commit("add b")
    assert [(c.path, c.type) for c in main.diff(feature)] == [("data/b.txt", "added")]
    assert [c.message for c in feature.log(max_amount=2)] == ["add b", "first"]
    with feature.transact(commit_message="in a transaction") as tx:
        tx.object("data/c.txt").upload(b"c1")
    assert feature.get_commit().message.startswith("Merge")
    assert [o.path for o in feature.objects(prefix="data/")] == ["data/a.txt", "data/b.txt", "data/c.txt"]
    main.cherry_pick(picked.get_commit().id)
    assert main.get_commit().message == "add b"
    assert [o.path for o in main.objects()] == ["data/a.txt", "data/b.txt"]
    main.revert(main.get_commit().id)
    assert [o.path for o in main.objects()] == ["data/a.txt"]
    main.object("junk").upload(b"x")
    main.reset_changes()
    assert list(main.uncommitted()) == []
    tag = repo.tag("v1").create(first)
    assert tag.get_commit().id == first.get_commit().id
    assert [t.id for t in repo.tags()] == ["v1"]
    assert repo.metadata == {}
    sdk.internal_api.set_repository_metadata(repo.id, lakefs_sdk.RepositoryMetadataSet(metadata={"owner": "perago"}))
    assert sdk.repositories_api.get_repository_metadata(repo.id) == {"owner": "perago"}
    feature.delete()
    assert [b.id for b in repo.branches()] == ["main"]
