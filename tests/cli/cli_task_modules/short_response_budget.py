"""A writable workspace task whose response timeout is shorter than its publish budget:
TaskDef generation emits a Python UserWarning (not a `warning:` line)."""

from pathlib import Path

from pydantic import BaseModel

from perago import PublishBudget, TaskControls, TimeoutPolicy, WorkspaceSpec, task


class P(BaseModel):
    x: int


@task(
    name="cli.shortresponse",
    owner_email="a@example.com",
    workspace=WorkspaceSpec(),
    controls=TaskControls(
        timeout=TimeoutPolicy(response_seconds=60),
        publish_budget=PublishBudget(
            observed_merge_p99_seconds=10,
            safety_margin_seconds=5,
            lakefs_merge_timeout_seconds=45,
            conductor_completion_timeout_seconds=15,
            worker_shutdown_grace_seconds=30,
            heartbeat_interval_seconds=10,
        ),
    ),
)
def run(workspace: Path, params: P) -> P:
    return params
