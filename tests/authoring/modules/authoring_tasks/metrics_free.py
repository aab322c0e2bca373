"""Shape D: workspace-free task with a metrics parameter."""

from pydantic import BaseModel

from perago import MetricRecorder, MetricSpec, task


class PingParams(BaseModel):
    host: str


class PingResult(BaseModel):
    reachable: bool


@task(name="net.ping", owner_email="net@example.net", metrics=MetricSpec())
def ping(params: PingParams, metrics: MetricRecorder) -> PingResult:
    metrics.gauge("hosts", 1)
    return PingResult(reachable=True)
