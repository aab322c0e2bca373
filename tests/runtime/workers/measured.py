"""A metrics-enabled task (shape D): records one application histogram per attempt,
with a user label perago keeps and one (`task_id`) it must drop."""

from __future__ import annotations

from pydantic import BaseModel

from perago import MetricRecorder, MetricSpec, task


class MeasuredParams(BaseModel):
    size: int


class MeasuredResult(BaseModel):
    size: int


@task(name="runtime.measured", owner_email="runtime-tests@example.com", metrics=MetricSpec())
def measured(params: MeasuredParams, metrics: MetricRecorder) -> MeasuredResult:
    metrics.histogram("item_size", params.size, labels={"colour": "blue", "task_id": "forged"})
    return MeasuredResult(size=params.size)
