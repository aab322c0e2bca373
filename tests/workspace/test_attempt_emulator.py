"""Workspace attempts end to end on the lakeFS emulator, through `run_workspace_attempt`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from perago.errors import (
    PostGuardrailViolation,
    PreGuardrailViolation,
    PublishFenceError,
    RuntimeConfigError,
    StaleAttemptError,
    TaskTerminalError,
)
from perago.guards import require_file
from perago.workspace import run_workspace_attempt
from perago.workspace.errors import (
    ForeignCommitError,
    LakeFSError,
    WorkspaceContractError,
)
from perago.workspace.identity import KIND, KIND_PUBLICATION, KIND_REVERT, REVERTS
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace.staging import STAGING_PREFIX
from perago.workspace_spec import WorkspaceSpec

from .conftest import Repo, attempt_snapshot


def run(
    repo: Repo,
    runtime: LakeFSWorkspaceRuntime,
    tmp_path: Path,
    body: Callable[[Path], Any],
    *,
    attempt: Any = None,
    ref: str | None = None,
    branch: str = "main",
    fence: Callable[[], None] = lambda: None,
    **spec: Any,
) -> str:
    attempt_dir = tmp_path / f"attempt-{uuid.uuid4().hex[:8]}"
    attempt_dir.mkdir()
    try:
        output = run_workspace_attempt(
            workspace={"repository": repo.name, "branch": branch, "refType": "commit", "ref": ref or repo.initial},
            spec=WorkspaceSpec(prefix=spec.pop("prefix", "/data"), **spec),
            attempt=attempt or attempt_snapshot(),
            execution_id=uuid.uuid4().hex,
            attempt_dir=attempt_dir,
            runtime=runtime,
            fence=fence,
            run_body=body,
        )
    finally:
        assert list(attempt_dir.iterdir()) == [], "the attempt workspace must be removed"
    assert list(output) == ["workspace", "result"]
    workspace = output["workspace"]
    assert list(workspace) == ["repository", "branch", "refType", "ref"]
    assert (workspace["repository"], workspace["branch"], workspace["refType"]) == (repo.name, branch, "commit")
    return workspace["ref"]


def edit(root: Path) -> None:
    (root / "edit.txt").write_bytes(b"after")
    (root / "drop.txt").unlink()
    (root / "new").mkdir()
    (root / "new" / "made.txt").write_bytes(b"made")


EDITED = {
    "data/keep.txt": b"keep",
    "data/edit.txt": b"after",
    "data/new/made.txt": b"made",
    "data/sub/deep.bin": bytes(range(256)) * 64,
    "other/outside.txt": b"outside the prefix",
}


def staging_branches(repo: Repo) -> list[str]:
    return [name for name, _ in repo.client.list_branches(repo.name, STAGING_PREFIX)]


def publications(repo: Repo, head: str, stop: str) -> list[str]:
    """Publications on the first-parent chain from `head` down to `stop` that are not reverted."""
    reverted: set[str] = set()
    live: list[str] = []
    commit = repo.client.get_commit(repo.name, head)
    while commit.id != stop:
        kind = commit.metadata.get(KIND)
        if kind == KIND_REVERT:
            reverted.add(commit.metadata[REVERTS])
        elif kind == KIND_PUBLICATION and commit.id not in reverted:
            live.append(commit.id)
        commit = repo.client.get_commit(repo.name, commit.first_parent)
    return live


def test_changed_workspace_publishes_one_commit_parented_by_the_input_ref(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    seen: list[bytes] = []
    ref = run(repo, runtime, tmp_path, lambda root: (seen.append((root / "sub/deep.bin").read_bytes()), edit(root)))
    assert seen == [bytes(range(256)) * 64]
    head = repo.head()
    assert head.id == ref
    assert head.parents == (repo.initial,)
    assert head.metadata[KIND] == KIND_PUBLICATION
    assert repo.tree(ref) == EDITED
    stats = repo.stats(ref)
    assert stats["data/keep.txt"].content_type == "text/plain", "untouched objects keep their content type"
    assert stats["data/edit.txt"].content_type == "text/plain", "a rewritten file carries its content type"
    assert stats["data/edit.txt"].metadata == {"origin": "seed"}
    assert staging_branches(repo) == []


def test_only_the_changed_file_is_uploaded(repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uploaded: list[str] = []
    real = LakeFSClient.upload_object

    def counting(self: LakeFSClient, repository: str, branch: str, key: str, *args: Any, **kwargs: Any) -> None:
        uploaded.append(key)
        real(self, repository, branch, key, *args, **kwargs)

    monkeypatch.setattr(LakeFSClient, "upload_object", counting)
    run(repo, runtime, tmp_path, lambda root: (root / "edit.txt").write_bytes(b"one change"))
    assert uploaded == ["data/edit.txt"]


def test_unchanged_workspace_keeps_the_input_ref_and_writes_nothing(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    def rewrite_identically(root: Path) -> None:
        (root / "edit.txt").write_bytes(b"before")
        (root / "empty").mkdir()

    ref = run(repo, runtime, tmp_path, rewrite_identically)
    assert ref == repo.initial
    assert repo.head().id == repo.initial
    assert repo.branches() == ["main"]


def counting_branch_creations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    created: list[str] = []
    real = LakeFSClient.create_branch

    def counting(self: LakeFSClient, repository: str, name: str, *args: Any, **kwargs: Any) -> Any:
        created.append(name)
        return real(self, repository, name, *args, **kwargs)

    monkeypatch.setattr(LakeFSClient, "create_branch", counting)
    return created


def test_files_rewritten_with_their_old_content_create_no_staging_branch(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = counting_branch_creations(monkeypatch)

    def rewrite_every_file_identically(root: Path) -> None:
        for path in [p for p in root.rglob("*") if p.is_file()]:
            path.write_bytes(path.read_bytes())

    assert run(repo, runtime, tmp_path, rewrite_every_file_identically) == repo.initial
    assert created == []


def test_many_changed_files_share_one_staging_branch(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = counting_branch_creations(monkeypatch)

    def write_many(root: Path) -> None:
        for n in range(24):
            (root / f"out-{n:02d}.txt").write_bytes(b"x" * n)

    ref = run(repo, runtime, tmp_path, write_many)
    assert len(created) == 1 and created[0].startswith(STAGING_PREFIX)
    assert {key for key in repo.tree(ref) if key.startswith("data/out-")} == {f"data/out-{n:02d}.txt" for n in range(24)}
    assert staging_branches(repo) == []


def test_read_only_task_never_writes_and_echoes_the_input_ref(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    ref = run(repo, runtime, tmp_path, edit, read_only=True)
    assert ref == repo.initial
    assert repo.head().id == repo.initial
    assert repo.branches() == ["main"]


def test_foreign_commit_landing_mid_task_fails_the_attempt_and_survives(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    foreign: list[str] = []

    def body(root: Path) -> None:
        edit(root)
        foreign.append(repo.commit_files("main", {"data/human.txt": b"by hand"}, message="human edit"))

    with pytest.raises(ForeignCommitError) as raised:
        run(repo, runtime, tmp_path, body)
    assert isinstance(raised.value, PublishFenceError)
    assert foreign[0] in str(raised.value)
    assert repo.head().id == foreign[0]
    assert repo.tree("main")["data/human.txt"] == b"by hand"
    assert staging_branches(repo) == []


def test_foreign_commit_in_the_merge_window_is_kept_and_our_merge_reverted(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_merge = LakeFSClient.merge
    foreign: list[str] = []

    def racing_merge(self: LakeFSClient, *args: Any, **kwargs: Any) -> str:
        foreign.append(repo.commit_files("main", {"other/race.txt": b"raced"}, message="racer"))
        return real_merge(self, *args, **kwargs)

    monkeypatch.setattr(LakeFSClient, "merge", racing_merge)
    with pytest.raises(ForeignCommitError, match="was reverted"):
        run(repo, runtime, tmp_path, edit)
    tree = repo.tree("main")
    assert tree["other/race.txt"] == b"raced", "the foreign commit is never dropped"
    assert tree["data/edit.txt"] == b"before" and "data/new/made.txt" not in tree
    assert foreign[0] in {c for c in _first_parent_chain(repo, 4)}
    assert staging_branches(repo) == []


def _first_parent_chain(repo: Repo, depth: int) -> list[str]:
    chain, commit = [], repo.head()
    for _ in range(depth):
        chain.append(commit.id)
        if commit.first_parent is None:
            break
        commit = repo.client.get_commit(repo.name, commit.first_parent)
    return chain


def test_retry_replaces_an_abandoned_publication_of_the_same_task(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    first = run(repo, runtime, tmp_path, edit, attempt=attempt_snapshot(task_id="t-1", retry=0))
    # Conductor never heard of `first`; the retry recomputes something slightly different.
    second = run(
        repo, runtime, tmp_path,
        lambda root: (root / "edit.txt").write_bytes(b"retry"),
        attempt=attempt_snapshot(task_id="t-2", retry=1),
    )
    assert second != first and repo.head().id == second
    tree = repo.tree(second)
    assert tree["data/edit.txt"] == b"retry"
    assert tree["data/drop.txt"] == b"drop" and "data/new/made.txt" not in tree
    assert publications(repo, second, repo.initial) == [second]


def test_no_op_retry_reverts_an_abandoned_publication_back_to_the_input_content(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    run(repo, runtime, tmp_path, edit, attempt=attempt_snapshot(task_id="t-1"))
    ref = run(repo, runtime, tmp_path, lambda root: None, attempt=attempt_snapshot(task_id="t-2", retry=1))
    assert repo.head().id == ref
    assert repo.tree(ref) == repo.tree(repo.initial)
    assert publications(repo, ref, repo.initial) == []


def test_a_publication_of_another_logical_task_is_never_replaced(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    other = run(repo, runtime, tmp_path, edit, attempt=attempt_snapshot(workflow="wf-other"))
    with pytest.raises(ForeignCommitError):
        run(repo, runtime, tmp_path, lambda root: (root / "x").write_bytes(b"x"))
    with pytest.raises(ForeignCommitError):
        run(repo, runtime, tmp_path, lambda root: None)
    assert repo.head().id == other


def test_duplicate_delivery_of_the_same_attempt_cannot_publish_twice(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    first = run(repo, runtime, tmp_path, edit, attempt=attempt_snapshot(task_id="t-9"))
    with pytest.raises(PublishFenceError, match="another delivery"):
        run(repo, runtime, tmp_path, lambda root: (root / "x").write_bytes(b"x"), attempt=attempt_snapshot(task_id="t-9"))
    assert repo.head().id == first


def test_stale_attempt_at_either_fence_publishes_nothing(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    calls: list[int] = []

    def second_fence_fails() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise StaleAttemptError("task-x")

    with pytest.raises(StaleAttemptError):
        run(repo, runtime, tmp_path, edit, fence=second_fence_fails)
    assert repo.head().id == repo.initial
    assert staging_branches(repo) == []


@pytest.mark.parametrize("operation", ["uploadObject", "createBranch"])
def test_server_error_during_staging_leaves_no_branch_and_an_unchanged_target(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, operation: str
) -> None:
    from perago.testing.lakefs import FaultRule

    def edit_many(root: Path) -> None:
        edit(root)
        for n in range(16):
            (root / f"out-{n:02d}.txt").write_bytes(b"x" * n)

    lakefs.faults.add(FaultRule(operation=operation, error_rate=1.0, error_status=503))
    try:
        with pytest.raises(LakeFSError, match="HTTP 503") as raised:
            run(repo, runtime, tmp_path, edit_many)
    finally:
        lakefs.faults.clear()
    assert not isinstance(raised.value, TaskTerminalError), "a 5xx is retryable"
    assert repo.head().id == repo.initial
    assert staging_branches(repo) == []


def test_lost_merge_answer_is_resolved_from_the_branch(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    from perago.testing.lakefs import FaultRule

    lakefs.faults.add(FaultRule(operation="mergeIntoBranch", drop_after_apply_rate=1.0, times=1))
    try:
        ref = run(repo, runtime, tmp_path, edit)
    finally:
        lakefs.faults.clear()
    assert repo.head().id == ref
    assert repo.client.get_commit(repo.name, ref).parents == (repo.initial,)
    assert repo.tree(ref) == EDITED


def test_protected_target_branch_still_accepts_publication_and_replacement(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    import lakefs_sdk

    lakefs_sdk.RepositoriesApi(repo.sdk).set_branch_protection_rules(
        repo.name, [lakefs_sdk.BranchProtectionRule(pattern="main")]
    )
    run(repo, runtime, tmp_path, edit, attempt=attempt_snapshot(task_id="t-1"))
    ref = run(repo, runtime, tmp_path, lambda root: (root / "keep.txt").write_bytes(b"k2"), attempt=attempt_snapshot(task_id="t-2", retry=1))
    assert repo.tree(ref)["data/keep.txt"] == b"k2"
    assert publications(repo, ref, repo.initial) == [ref]


@pytest.mark.parametrize(
    "key", ["data/../escape.txt", "data//double.txt", "data/a\\b.txt", "data/C:/x"]
)
def test_unmappable_keys_fail_terminally_and_write_nothing(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, key: str
) -> None:
    ref = repo.commit_files("main", {key: b"evil"})
    with pytest.raises(WorkspaceContractError, match="cannot be a workspace file"):
        run(repo, runtime, tmp_path, edit, ref=ref)
    everything = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}
    assert {p for p in everything if not p.startswith("attempt-")} == {"scratch"}
    assert all("/" not in p for p in everything if p.startswith("attempt-")), "attempt dirs are left empty"


def test_absolute_keys_under_the_root_prefix_fail_terminally(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    ref = repo.commit_files("main", {"/etc/evil": b"evil"})
    with pytest.raises(WorkspaceContractError, match="is absolute"):
        run(repo, runtime, tmp_path, edit, ref=ref, prefix="/")


def test_case_colliding_keys_fail_terminally(repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path) -> None:
    ref = repo.commit_files("main", {"data/Edit.txt": b"E"})
    with pytest.raises(WorkspaceContractError, match="differ only by case"):
        run(repo, runtime, tmp_path, edit, ref=ref)


def test_symlink_left_by_the_task_fails_terminally_naming_it(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    with pytest.raises(WorkspaceContractError, match="symlinks: link"):
        run(repo, runtime, tmp_path, lambda root: (root / "link").symlink_to("/etc/passwd"))
    assert repo.head().id == repo.initial
    assert staging_branches(repo) == []


def test_sibling_prefixes_and_directory_markers_are_not_downloaded(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    ref = repo.commit_files("main", {"data2/sibling.txt": b"s", "data/dir/": b""})
    seen: list[list[str]] = []
    run(repo, runtime, tmp_path, lambda root: seen.append(sorted(str(p.relative_to(root)) for p in root.rglob("*"))), ref=ref)
    assert seen == [["drop.txt", "edit.txt", "keep.txt", "sub", "sub/deep.bin"]]


def test_branch_names_are_refused_as_input_refs(repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceContractError, match="is not a commit id"):
        run(repo, runtime, tmp_path, edit, ref="main")


def test_short_commit_ids_are_normalized_to_the_full_id(repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path) -> None:
    assert run(repo, runtime, tmp_path, lambda root: None, ref=repo.initial[:12], read_only=True) == repo.initial


def test_guardrails_run_on_the_downloaded_and_the_produced_workspace(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    with pytest.raises(PreGuardrailViolation):
        run(repo, runtime, tmp_path, edit, pre=[require_file("missing.txt")])
    with pytest.raises(PostGuardrailViolation):
        run(repo, runtime, tmp_path, edit, post=[require_file("result.txt")])
    assert repo.head().id == repo.initial


def test_old_servers_are_refused(lakefs: Any) -> None:
    from perago.testing.lakefs import LakeFSEmulator

    with LakeFSEmulator(version="1.47.0") as old:
        runtime = LakeFSWorkspaceRuntime(LakeFSClient(old.url, old.access_key_id, old.secret_access_key))
        with pytest.raises(RuntimeConfigError, match="1.47.0"):
            runtime.check_server()


def test_the_secret_never_appears_in_failure_reasons(lakefs: Any, repo: Repo, tmp_path: Path) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    runtime = LakeFSWorkspaceRuntime(LakeFSClient(lakefs.url, lakefs.access_key_id, secret))
    with pytest.raises(LakeFSError) as raised:
        runtime.check_server()
    assert raised.value.status == 401
    assert secret not in str(raised.value) and secret not in repr(runtime.client)


def test_runtime_from_config_reads_the_lakectl_settings(lakefs: Any) -> None:
    from perago.config import LakeFSConfig

    env = lakefs.env()
    config = LakeFSConfig(
        endpoint_url=env["LAKECTL_SERVER_ENDPOINT_URL"],
        access_key_id=env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        secret_access_key=env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )
    runtime = LakeFSWorkspaceRuntime.from_config(config)
    assert runtime.client.endpoint == lakefs.api_url
    assert runtime.check_server() == lakefs.version


def test_workspace_io_metrics_record_time_and_bytes_per_operation(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    from perago.metrics import MetricRecorder, RuntimeMetricContext
    from perago.workspace.attempt import WorkspaceIoMetrics

    samples: list[tuple[str, str, float]] = []

    class Recording(MetricRecorder):
        def with_context(self, context: Any) -> MetricRecorder:
            return self

        @property
        def context(self) -> None:
            return None

        def histogram(self, name: str, value: float, *, labels: Any = None) -> None:
            raise AssertionError("workspace I/O metrics are runtime metrics")

        def gauge(self, name: str, value: float, *, labels: Any = None) -> None:
            raise AssertionError("no gauges expected")

        def runtime_histogram(self, name: str, value: float, *, context: Any, labels: Any = None) -> None:
            samples.append((name, labels["operation"], value))

        def runtime_gauge(self, name: str, value: float, *, context: Any, labels: Any = None) -> None:
            raise AssertionError("no gauges expected")

    attempt_dir = tmp_path / "metrics"
    attempt_dir.mkdir()
    run_workspace_attempt(
        workspace={"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
        spec=WorkspaceSpec(prefix="/data"),
        attempt=attempt_snapshot(),
        execution_id=uuid.uuid4().hex,
        attempt_dir=attempt_dir,
        runtime=runtime,
        fence=lambda: None,
        run_body=lambda root: (root / "edit.txt").write_bytes(b"12345678"),
        io_metrics=WorkspaceIoMetrics(Recording(), RuntimeMetricContext(task_name="render_task")),
    )
    timers = [op for name, op, _ in samples if name == "workspace_io_duration_seconds"]
    sizes = {op: value for name, op, value in samples if name == "workspace_io_bytes"}
    assert timers == ["download", "upload", "publish"]
    assert sizes == {"download": 4 + 6 + 4 + 256 * 64, "upload": 8}


def test_lost_revert_answer_during_replacement_is_resolved_from_the_branch(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    from perago.testing.lakefs import FaultRule

    run(repo, runtime, tmp_path, edit, attempt=attempt_snapshot(task_id="t-1"))
    lakefs.faults.add(FaultRule(operation="revertBranch", drop_after_apply_rate=1.0, times=1))
    try:
        ref = run(
            repo, runtime, tmp_path,
            lambda root: (root / "edit.txt").write_bytes(b"retry"),
            attempt=attempt_snapshot(task_id="t-2", retry=1),
        )
    finally:
        lakefs.faults.clear()
    assert repo.tree(ref)["data/edit.txt"] == b"retry"
    assert publications(repo, ref, repo.initial) == [ref]
