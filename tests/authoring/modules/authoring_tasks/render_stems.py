"""Worked example A of spec/authoring.md §7.7: a writable workspace task."""

from pathlib import Path

from pydantic import BaseModel, Field

from perago import (
    ExecutionLimits,
    PublishBudget,
    RetryPolicy,
    TaskControls,
    TimeoutPolicy,
    WorkspaceSpec,
    forbid_glob,
    require_dir,
    require_file,
    require_glob,
    task,
)


class StemSpec(BaseModel):
    label: str = Field(min_length=1)
    gain_db: float = 0.0


class RenderParams(BaseModel):
    stems: list[StemSpec]
    sample_rate: int = Field(default=48000, ge=8000)
    normalize: bool = True


class RenderResult(BaseModel):
    stem_count: int = Field(ge=0)
    peak_dbfs: float | None = None


@task(
    name="audio.render_stems",
    owner_email="audio-team@example.net",
    description="Render stems from mixdown.",
    workspace=WorkspaceSpec(
        prefix="/projects/mix",
        pre=[require_file("mix/master.wav"), require_glob("mix/*.wav", min_count=1, max_count=8)],
        post=[require_dir("stems"), forbid_glob("**/*.partial")],
    ),
    controls=TaskControls(
        retry=RetryPolicy(count=2, logic="LINEAR_BACKOFF", delay_seconds=15),
        timeout=TimeoutPolicy(seconds=3600, response_seconds=1200),
        limits=ExecutionLimits(concurrent_exec_limit=4),
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
def render_stems(workspace: Path, params: RenderParams) -> RenderResult:
    (workspace / "stems").mkdir(exist_ok=True)
    return RenderResult(stem_count=len(params.stems))
