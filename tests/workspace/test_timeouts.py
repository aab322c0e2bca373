"""Per-call timeouts (W-15) and the end-to-end publish deadline from the PublishBudget (W-16)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from perago.controls import PublishBudget
from perago.workspace import run_workspace_attempt
from perago.workspace.errors import LakeFSError, PublishDeadlineExceeded
from perago.workspace.identity import KIND, KIND_PUBLICATION
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace_spec import WorkspaceSpec

from .conftest import Repo, attempt_snapshot
from .test_attempt_emulator import publications, staging_branches


def attempt(repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, task_id: str, content: bytes) -> str:
    attempt_dir = tmp_path / task_id
    attempt_dir.mkdir()
    return run_workspace_attempt(
        workspace={"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
        spec=WorkspaceSpec(prefix="/data"),
        attempt=attempt_snapshot(workflow="wf-slow", task_id=task_id),
        execution_id=uuid.uuid4().hex,
        attempt_dir=attempt_dir,
        runtime=runtime,
        fence=lambda: None,
        run_body=lambda root: (root / "edit.txt").write_bytes(content),
    )["workspace"]["ref"]


def test_a_stalled_listing_fails_the_attempt_instead_of_hanging(
    lakefs: Any, repo: Repo, tmp_path: Path
) -> None:
    from perago.testing.lakefs import FaultRule

    client = LakeFSClient(lakefs.url, lakefs.access_key_id, lakefs.secret_access_key, call_timeout_seconds=0.3)
    runtime = LakeFSWorkspaceRuntime(client)
    lakefs.faults.add(FaultRule(operation="listObjects", latency_seconds=1.5))
    try:
        with pytest.raises(LakeFSError, match="list objects .*transport error"):
            attempt(repo, runtime, tmp_path, "t-stall", b"x")
    finally:
        lakefs.faults.clear()


def test_a_slow_merge_runs_out_of_the_publish_budget_and_the_retry_replaces_it(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    from perago.testing.lakefs import FaultRule

    budget = PublishBudget(
        observed_merge_p99_seconds=0,
        safety_margin_seconds=0,
        lakefs_merge_timeout_seconds=1,
        conductor_completion_timeout_seconds=1,
        worker_shutdown_grace_seconds=1,
        heartbeat_interval_seconds=1,
    )
    budgeted = LakeFSWorkspaceRuntime(runtime.client, publish_budget=budget)
    lakefs.faults.add(FaultRule(operation="mergeIntoBranch", latency_seconds=2.0, times=1))
    try:
        with pytest.raises((LakeFSError, PublishDeadlineExceeded)):
            attempt(repo, budgeted, tmp_path, "t-slow", b"slow")
    finally:
        lakefs.faults.clear()
    # The server finishes the slow merge after the client gave up: an abandoned publication.
    for _ in range(100):
        head = repo.head()
        if head.metadata.get(KIND) == KIND_PUBLICATION:
            break
        time.sleep(0.05)
    assert head.parents == (repo.initial,)

    ref = attempt(repo, runtime, tmp_path, "t-retry", b"retry")
    assert repo.tree(ref)["data/edit.txt"] == b"retry"
    assert publications(repo, ref, repo.initial) == [ref]
    assert staging_branches(repo) == []
