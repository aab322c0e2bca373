"""The workspace runtime plugged into the attempt runner: Conductor task in, result out."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from perago import StaleAttemptError, WorkspaceSpec, task
from perago.attempt import Attempt, AttemptRunner
from perago.workspace import LakeFSWorkspaceAttempts, core_attempt_directory
from perago.workspace.object_cache import OBJECT_CACHE_DIR_NAME
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from pydantic import BaseModel

from .conftest import Repo


class Params(BaseModel):
    text: str


class Output(BaseModel):
    files: int


@task(name="test.render", owner_email="team@example.com", workspace=WorkspaceSpec(prefix="/data"))
def render(workspace: Path, params: Params) -> Output:
    if params.text == "symlink":
        (workspace / "link").symlink_to("/etc/passwd")
    (workspace / "edit.txt").write_text(params.text)
    return Output(files=sum(1 for _ in workspace.rglob("*")))


def runner(runtime: LakeFSWorkspaceRuntime, tmp_path: Path, *, stale: bool = False) -> AttemptRunner:
    def fence(attempt: Attempt) -> None:
        if stale:
            raise StaleAttemptError(attempt.snapshot.task_id)

    definition = render.__perago_task__  # type: ignore[attr-defined]
    return AttemptRunner(
        definition,
        worker_id="renderBroker",
        failure_reason_max_length=500,
        workspace_runtime=LakeFSWorkspaceAttempts(
            runtime,
            definition.workspace,
            attempt_directory=core_attempt_directory(tmp_path / "root"),
            fence=fence,
        ),
    )


def conductor_task(repo: Repo, text: str) -> dict[str, Any]:
    return {
        "taskId": f"t-{uuid.uuid4().hex[:6]}",
        "workflowInstanceId": "wf-seam",
        "retryCount": 0,
        "taskDefName": "test.render",
        "referenceTaskName": "render_ref",
        "seq": 1,
        "status": "IN_PROGRESS",
        "inputData": {
            "workspace": {"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
            "params": {"text": text},
        },
    }


def test_completed_attempt_reports_the_published_ref_and_the_result(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    result = runner(runtime, tmp_path).run(conductor_task(repo, "hello")).result
    assert result.status == "COMPLETED", result.reason_for_incompletion
    left = [path.name for path in (tmp_path / "root").iterdir()]
    assert left == [OBJECT_CACHE_DIR_NAME], "the attempt directory is removed, the object cache stays"
    head = repo.head()
    assert result.output == {
        "workspace": {"repository": repo.name, "branch": "main", "refType": "commit", "ref": head.id},
        "result": {"files": 5},
    }
    assert head.parents == (repo.initial,)
    assert repo.tree(head.id)["data/edit.txt"] == b"hello"


def test_symlink_is_a_terminal_failure_naming_the_path(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    result = runner(runtime, tmp_path).run(conductor_task(repo, "symlink")).result
    assert result.status == "FAILED_WITH_TERMINAL_ERROR"
    assert result.reason_for_incompletion == "workspace publication does not support symlinks: link"
    assert repo.head().id == repo.initial


def test_stale_attempt_is_a_retryable_failure_and_publishes_nothing(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    result = runner(runtime, tmp_path, stale=True).run(conductor_task(repo, "late")).result
    assert result.status == "FAILED"
    assert repo.head().id == repo.initial


def test_workers_build_the_runtime_from_the_configuration(tmp_path: Path) -> None:
    """Executors and thread-mode runners share one constructor: LAKECTL_* settings, the
    workspace root for attempt directories, and the object cache pruned on the GC TTL."""
    from perago.config import load_runtime_config
    from perago.workspace import workspace_attempts_from_config

    config = load_runtime_config(
        "tests.workspace.test_runner_seam",
        process_env={
            "PERAGO_WORKSPACE_ROOT": str(tmp_path / "root"),
            "PERAGO_WORKSPACE_GC_TTL": "2h",
            "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs.example:8000",
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA",
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "secret-value",
        },
        probe_roots=False,
    )
    attempts = workspace_attempts_from_config(
        render.__perago_task__,  # type: ignore[attr-defined]
        config,
        lambda task_id: {},
    )
    assert attempts.runtime.cache_max_age_seconds == 7200
    assert attempts.runtime.client.endpoint.startswith("http://lakefs.example:8000")
    assert attempts.spec.prefix == "data"  # WorkspaceSpec normalises the declared "/data"
