"""Every control set away from its default, limits included (0 counts as set)."""

from pathlib import Path

from pydantic import BaseModel

from perago import ExecutionLimits, RetryPolicy, TaskControls, TimeoutPolicy, WorkspaceSpec, task


class LimitParams(BaseModel):
    n: int


class LimitResult(BaseModel):
    ok: bool


@task(
    name="ops.limited",
    owner_email="ops@example.net",
    description="Rate limited.",
    workspace=WorkspaceSpec(prefix="data/ops"),
    controls=TaskControls(
        retry={
            "count": "10",
            "logic": "EXPONENTIAL_BACKOFF",
            "delay_seconds": 5,
            "max_delay_seconds": 300,
            "jitter_ms": 250,
        },
        timeout=TimeoutPolicy(policy="RETRY", seconds=7200, response_seconds=900, poll_seconds=30, total_seconds=86400),
        limits=ExecutionLimits(concurrent_exec_limit=0, rate_limit_frequency_in_seconds=60, rate_limit_per_frequency=0),
    ),
)
def limited(workspace: Path, params: LimitParams) -> LimitResult:
    return LimitResult(ok=True)
