"""A metrics-enabled workspace task (without worker capacity, so no PERAGO_INSTANCE_ID):
writes one note under `notes/`, so its attempt downloads, uploads and publishes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from perago import MetricRecorder, MetricSpec, WorkspaceSpec, task


class NoteParams(BaseModel):
    name: str
    text: str


class NoteResult(BaseModel):
    bytes_written: int


@task(
    name="runtime.measured_notes",
    owner_email="runtime-tests@example.com",
    workspace=WorkspaceSpec(prefix="/notes"),
    metrics=MetricSpec(worker_capacity=False),
)
def measured_notes(workspace: Path, params: NoteParams, metrics: MetricRecorder) -> NoteResult:
    written = (workspace / f"{params.name}.txt").write_text(params.text)
    metrics.gauge("bytes_written", written)
    return NoteResult(bytes_written=written)
