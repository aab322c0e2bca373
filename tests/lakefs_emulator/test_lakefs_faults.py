"""Fault injection (5xx, dropped connections, apply-then-drop, latency), pre-merge hook, concurrency."""

from __future__ import annotations

import http.client
import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import lakefs_sdk
import pytest
import urllib3
from lakefs_sdk.client import LakeFSClient
from lakefs_helpers import api_error, commit, publish_from_another_process, read, upload

from perago.testing import LakeFSEmulator
from perago.testing.lakefs import FaultRule, MergeEvent
from perago.testing.lakefs.faults import FaultInjector


def test_no_faults_by_default(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    for _ in range(20):
        sdk.branches_api.get_branch(repo_name, "main")
    assert emulator.faults.rules == [] and emulator.faults.injected == []


def test_error_rule_answers_5xx_for_that_endpoint_only(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    emulator.faults.add(FaultRule(operation="uploadObject", error_rate=1.0, error_status=503, times=2))
    for _ in range(2):
        error = api_error(503, upload, sdk, repo_name, "main", "f", b"1")
        assert "uploadObject" in json.loads(error.body)["message"]
    sdk.branches_api.get_branch(repo_name, "main")  # other endpoints untouched
    upload(sdk, repo_name, "main", "f", b"1")  # rule exhausted after two faults
    assert [(i.operation, i.action) for i in emulator.faults.injected] == [("uploadObject", "error")] * 2
    assert [d.path for d in sdk.branches_api.diff_branch(repo_name, "main").results] == ["f"]


def test_injected_error_is_not_applied(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "f", b"1")
    before = sdk.branches_api.get_branch(repo_name, "main").commit_id
    emulator.faults.add(FaultRule(operation="commit", error_rate=1.0, error_status=500, times=1))
    api_error(500, commit, sdk, repo_name, "main")
    assert sdk.branches_api.get_branch(repo_name, "main").commit_id == before


def test_dropped_connection_without_a_response(emulator: LakeFSEmulator, repo_name: str) -> None:
    emulator.faults.add(FaultRule(operation="getBranch", drop_rate=1.0, times=1))
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    conn.request("GET", f"/api/v1/repositories/{repo_name}/branches/main",
                 headers=urllib3.make_headers(basic_auth=f"{emulator.access_key_id}:{emulator.secret_access_key}"))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()


def test_sdk_gives_up_when_every_attempt_is_dropped(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    emulator.faults.add(FaultRule(operation="getBranch", drop_rate=1.0))
    with pytest.raises(urllib3.exceptions.HTTPError):
        sdk.branches_api.get_branch(repo_name, "main")
    assert len(emulator.faults.injected) == 4  # urllib3's default: one try plus three retries


def test_merge_applied_but_response_lost(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="stage", source="main"))
    upload(sdk, repo_name, "stage", "out", b"published")
    commit(sdk, repo_name, "stage")
    before = sdk.branches_api.get_branch(repo_name, "main").commit_id
    emulator.faults.add(FaultRule(operation="mergeIntoBranch", drop_after_apply_rate=1.0, times=1))
    with pytest.raises(urllib3.exceptions.HTTPError):  # POST is not re-sent by urllib3
        sdk.refs_api.merge_into_branch(repo_name, "stage", "main", merge=lakefs_sdk.Merge(squash_merge=True))
    after = sdk.commits_api.get_commit(repo_name, "main")
    assert after.parents == [before]
    assert read(sdk, repo_name, "main", "out") == b"published"


def test_hard_reset_applied_but_response_lost(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    first = sdk.branches_api.get_branch(repo_name, "main").commit_id
    upload(sdk, repo_name, "main", "f", b"1")
    commit(sdk, repo_name, "main")
    emulator.faults.add(FaultRule(operation="hardResetBranch", drop_after_apply_rate=1.0, times=1))
    # urllib3 re-sends the idempotent PUT after the lost response; the second try succeeds
    sdk.experimental_api.hard_reset_branch(repo_name, "main", first)
    assert sdk.branches_api.get_branch(repo_name, "main").commit_id == first
    assert [i.action for i in emulator.faults.injected] == ["drop_after_apply"]


def test_latency_is_injected_and_recorded(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    emulator.faults.add(FaultRule(operation="getBranch", latency_seconds=0.01, times=3))
    for _ in range(4):
        sdk.branches_api.get_branch(repo_name, "main")
    assert [i.action for i in emulator.faults.injected] == ["latency"] * 3


def test_before_apply_lands_a_foreign_commit_in_the_publish_window(
    emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str
) -> None:
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="stage", source="main"))
    upload(sdk, repo_name, "stage", "ours", b"1")
    commit(sdk, repo_name, "stage")
    read_head = sdk.branches_api.get_branch(repo_name, "main").commit_id
    foreign: list[str] = []

    def land_foreign_commit(operation: str) -> None:
        upload(sdk, repo_name, "main", "theirs", b"foreign")
        foreign.append(commit(sdk, repo_name, "main", "foreign writer").id)

    emulator.faults.add(FaultRule(operation="mergeIntoBranch", before_apply=land_foreign_commit, times=1))
    merged = sdk.refs_api.merge_into_branch(repo_name, "stage", "main", merge=lakefs_sdk.Merge(squash_merge=True))
    result = sdk.commits_api.get_commit(repo_name, merged.reference)
    assert result.parents == foreign and foreign[0] != read_head  # the merge went onto the moved head
    assert [r.path for r in sdk.objects_api.list_objects(repo_name, "main").results] == ["ours", "theirs"]
    assert [i.action for i in emulator.faults.injected] == ["before_apply"]


def test_rates_follow_the_seed() -> None:
    def decisions(seed: int) -> list[str | None]:
        injector = FaultInjector(seed=seed)
        injector.add(FaultRule(error_rate=0.3, drop_rate=0.2))
        return [injector.decide("getObject").action for _ in range(200)]

    first = decisions(7)
    assert first == decisions(7)
    assert first != decisions(8)
    assert 40 < first.count("error") < 80 and 20 < first.count("drop") < 60


@pytest.mark.parametrize(
    "kwargs",
    [{"error_rate": 1.5}, {"drop_rate": -0.1}, {"error_rate": 0.6, "drop_rate": 0.6}, {"error_status": 404},
     {"latency_seconds": -1}],
)
def test_invalid_fault_rules_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="FaultRule"):
        FaultRule(**kwargs)


def test_pre_merge_hook_rejects_with_412_and_the_branch_stays(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    seen: list[MergeEvent] = []

    def expect_head(event: MergeEvent) -> str | None:
        seen.append(event)
        expected = dict(event.commit.metadata).get("expected_head")
        return None if expected == event.commit.parents[0] else "destination moved"

    emulator.pre_merge_hook = expect_head
    sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name="stage", source="main"))
    upload(sdk, repo_name, "stage", "f", b"1")
    commit(sdk, repo_name, "stage")
    actual = sdk.branches_api.get_branch(repo_name, "main").commit_id
    error = api_error(412, sdk.refs_api.merge_into_branch, repo_name, "stage", "main",
                      merge=lakefs_sdk.Merge(squash_merge=True, metadata={"expected_head": "0" * 64}))
    assert "destination moved" in json.loads(error.body)["message"]
    assert sdk.branches_api.get_branch(repo_name, "main").commit_id == actual
    merged = sdk.refs_api.merge_into_branch(repo_name, "stage", "main",
                                            merge=lakefs_sdk.Merge(squash_merge=True, metadata={"expected_head": actual}))
    assert sdk.branches_api.get_branch(repo_name, "main").commit_id == merged.reference
    assert [(e.repository, e.source_ref, e.destination_branch) for e in seen] == [(repo_name, "stage", "main")] * 2


def test_parallel_writers_on_one_branch_lose_nothing(sdk: LakeFSClient, repo_name: str) -> None:
    contents = {f"p/{i:03d}": f"content {i}".encode() * (i + 1) for i in range(120)}
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda item: upload(sdk, repo_name, "main", *item), contents.items()))
    created = commit(sdk, repo_name, "main")
    listed = sdk.objects_api.list_objects(repo_name, created.id, amount=1000).results
    assert [r.path for r in listed] == sorted(contents)
    with ThreadPoolExecutor(max_workers=12) as pool:
        bodies = list(pool.map(lambda path: read(sdk, repo_name, created.id, path), sorted(contents)))
    assert bodies == [contents[p] for p in sorted(contents)]


def test_parallel_publications_from_many_processes(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    """Each process stages on its own hidden branch and squash-merges into its own target branch."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lakefs_sdk", "lakefs_helpers"])
    jobs = [(emulator.api_url, emulator.access_key_id, emulator.secret_access_key, repo_name, str(n)) for n in range(4)]
    with context.Pool(4) as pool:
        outputs = pool.starmap(publish_from_another_process, jobs)
    for n, (base, merged) in enumerate(outputs):
        published = sdk.commits_api.get_commit(repo_name, f"target-{n}")
        assert published.id == merged and published.parents == [base]
        keys = [r.path for r in sdk.objects_api.list_objects(repo_name, merged, amount=1000).results]
        assert keys == sorted(f"out/{n}/{i}" for i in range(20))
    remaining = [b.id for b in sdk.branches_api.list_branches(repo_name, show_hidden=True).results]
    assert remaining == ["main", "target-0", "target-1", "target-2", "target-3"]


def test_concurrent_merges_into_one_branch_serialize(sdk: LakeFSClient, repo_name: str) -> None:
    """Every merge lands exactly once and each sees the previous one as its first parent."""
    for n in range(8):
        sdk.branches_api.create_branch(repo_name, lakefs_sdk.BranchCreation(name=f"s{n}", source="main"))
        upload(sdk, repo_name, f"s{n}", f"file-{n}", b"x")
        commit(sdk, repo_name, f"s{n}")
    with ThreadPoolExecutor(max_workers=8) as pool:
        merged = list(pool.map(
            lambda n: sdk.refs_api.merge_into_branch(repo_name, f"s{n}", "main", merge=lakefs_sdk.Merge(squash_merge=True)).reference,
            range(8)))
    chain = [c.id for c in sdk.refs_api.log_commits(repo_name, "main", first_parent=True, amount=8).results]
    assert sorted(chain) == sorted(merged)
    assert [r.path for r in sdk.objects_api.list_objects(repo_name, "main").results] == [f"file-{n}" for n in range(8)]
