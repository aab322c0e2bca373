"""An executor SIGKILLed mid-publication, then Conductor's retry: exactly one visible publication."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from perago.workspace import run_workspace_attempt, sweep_stale_staging_branches
from perago.workspace.identity import PublicationIdentity
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace.staging import STAGING_PREFIX, staging_branch_name
from perago.workspace_spec import WorkspaceSpec

from .conftest import Repo, attempt_snapshot
from .test_attempt_emulator import publications, staging_branches

CHILD = Path(__file__).with_name("crash_during_publish.py")


@pytest.mark.parametrize("kill_point", ["before_merge", "after_merge"])
def test_killed_publication_and_its_retry_leave_exactly_one_publication(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, kill_point: str
) -> None:
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    child = subprocess.run(
        [sys.executable, str(CHILD), repo.name, repo.initial, str(first_dir), kill_point],
        env={**os.environ, **lakefs.env()},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    head_after_crash = repo.head()
    if kill_point == "after_merge":
        assert head_after_crash.parents == (repo.initial,), "the killed attempt's merge landed"
    else:
        assert head_after_crash.id == repo.initial
    assert len(staging_branches(repo)) == 1, "a killed executor leaks its staging branch"

    retry_dir = tmp_path / "retry"
    retry_dir.mkdir()
    output = run_workspace_attempt(
        workspace={"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
        spec=WorkspaceSpec(prefix="/data"),
        attempt=_crash_retry_attempt(),
        execution_id=uuid.uuid4().hex,
        attempt_dir=retry_dir,
        runtime=runtime,
        fence=lambda: None,
        run_body=lambda root: (root / "edit.txt").write_bytes(b"retry"),
    )
    assert repo.head().id == output["workspace"]["ref"]
    assert repo.tree(output["workspace"]["ref"])["data/edit.txt"] == b"retry"
    assert publications(repo, output["workspace"]["ref"], repo.initial) == [output["workspace"]["ref"]]

    removed = sweep_stale_staging_branches(repo.client, repo.name, max_age_seconds=0)
    assert len(removed) == 1 and staging_branches(repo) == []


def _crash_retry_attempt() -> Any:
    snapshot = attempt_snapshot(workflow="wf-crash", ref_name="render", task_id="t-retry", retry=1)
    snapshot.seq = 1
    return snapshot


def test_sweeper_removes_only_old_perago_staging_branches(repo: Repo) -> None:
    identity = PublicationIdentity.of(attempt_snapshot(), uuid.uuid4().hex)
    old = staging_branch_name(identity, now=time.time() - 7200)
    young = staging_branch_name(identity, now=time.time())
    for name in (old, young, "perago-stg-human-made", "feature"):
        repo.create_branch(name, repo.initial)
    removed = sweep_stale_staging_branches(repo.client, repo.name, max_age_seconds=3600)
    assert removed == [old]
    remaining = set(repo.branches())
    assert {young, "perago-stg-human-made", "feature", "main"} <= remaining and old not in remaining
    assert all(name.startswith(STAGING_PREFIX) for name in (old, young))


def test_writable_attempts_sweep_stale_staging_branches_and_read_only_ones_do_not(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    from perago.errors import PostGuardrailViolation
    from perago.guards import require_file

    stale = staging_branch_name(PublicationIdentity.of(attempt_snapshot(), uuid.uuid4().hex), now=time.time() - 3 * 86400)
    repo.create_branch(stale, repo.initial)

    def attempt(name: str, **spec: Any) -> None:
        attempt_dir = tmp_path / name
        attempt_dir.mkdir()
        run_workspace_attempt(
            workspace={"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
            spec=WorkspaceSpec(prefix="/data", **spec),
            attempt=attempt_snapshot(),
            execution_id=uuid.uuid4().hex,
            attempt_dir=attempt_dir,
            runtime=runtime,
            fence=lambda: None,
            run_body=lambda root: None,
        )

    attempt("read-only", read_only=True)
    assert stale in staging_branches(repo)
    with pytest.raises(PostGuardrailViolation):
        attempt("failing", post=[require_file("never.txt")])
    assert staging_branches(repo) == []
