"""Example A with response_seconds below the publish budget: TaskDef generation warns."""

from pathlib import Path

from pydantic import BaseModel

from perago import PublishBudget, TaskControls, TimeoutPolicy, WorkspaceSpec, task


class TightParams(BaseModel):
    take: int


class TightResult(BaseModel):
    rendered: bool


@task(
    name="audio.render_tight",
    owner_email="audio-team@example.net",
    workspace=WorkspaceSpec(prefix="projects/mix"),
    controls=TaskControls(
        timeout=TimeoutPolicy(response_seconds=100),
        publish_budget=PublishBudget(
            observed_merge_p99_seconds=30,
            safety_margin_seconds=30,
            lakefs_merge_timeout_seconds=90,
            conductor_completion_timeout_seconds=20,
            worker_shutdown_grace_seconds=30,
            heartbeat_interval_seconds=15,
        ),
    ),
)
def render_tight(workspace: Path, params: TightParams) -> TightResult:
    return TightResult(rendered=True)
