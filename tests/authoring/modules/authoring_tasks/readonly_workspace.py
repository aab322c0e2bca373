"""Read-only workspace task with a publish budget: no UserWarning, the CLI warns that the budget is ignored."""

from pathlib import Path

from pydantic import BaseModel

from perago import PublishBudget, TaskControls, TimeoutPolicy, WorkspaceSpec, require_glob, task


class ScanParams(BaseModel):
    pattern: str = "*.wav"


class ScanResult(BaseModel):
    files: int


@task(
    name="audio.scan",
    owner_email="audio@example.net",
    workspace=WorkspaceSpec(prefix="/", read_only=True, pre=[require_glob("**/*.wav", min_count=0)]),
    controls=TaskControls(
        timeout=TimeoutPolicy(response_seconds=10),
        publish_budget=PublishBudget(
            observed_merge_p99_seconds=1,
            safety_margin_seconds=1,
            lakefs_merge_timeout_seconds=2,
            conductor_completion_timeout_seconds=100,
            worker_shutdown_grace_seconds=1,
            heartbeat_interval_seconds=1,
        ),
    ),
)
def scan(workspace: Path, params: ScanParams) -> ScanResult:
    return ScanResult(files=sum(1 for _ in workspace.glob(params.pattern)))
