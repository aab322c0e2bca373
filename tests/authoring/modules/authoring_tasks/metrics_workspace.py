"""Shape B: workspace task with a metrics parameter (metrics have no effect on the TaskDef)."""

from pathlib import Path

from pydantic import BaseModel

from perago import MetricRecorder, MetricSpec, WorkspaceSpec, task


class CountParams(BaseModel):
    folder: str


class CountResult(BaseModel):
    count: int


@task(
    name="files.count",
    owner_email="files@example.net",
    workspace=WorkspaceSpec(prefix="inbox"),
    metrics=MetricSpec(worker_capacity=False),
)
def count(workspace: Path, params: CountParams, metrics: MetricRecorder) -> CountResult:
    with metrics.timer("count"):
        return CountResult(count=len(list((workspace / params.folder).iterdir())))
