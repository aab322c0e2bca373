from pathlib import Path

from pydantic import BaseModel

from perago import PublishBudget, TaskControls, WorkspaceSpec, task


class P(BaseModel):
    x: int


@task(
    name="cli.readonly",
    owner_email="a@example.com",
    workspace=WorkspaceSpec(read_only=True),
    controls=TaskControls(
        publish_budget=PublishBudget(
            observed_merge_p99_seconds=10,
            safety_margin_seconds=5,
            lakefs_merge_timeout_seconds=45,
            conductor_completion_timeout_seconds=15,
            worker_shutdown_grace_seconds=30,
            heartbeat_interval_seconds=10,
        )
    ),
)
def run(workspace: Path, params: P) -> P:
    return params
