"""A workspace task: writes one note file under the `notes/` prefix of a lakeFS repository."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from perago import WorkspaceSpec, task


class NoteParams(BaseModel):
    name: str
    text: str


class NoteResult(BaseModel):
    files: int


@task(name="runtime.notes", owner_email="runtime-tests@example.com", workspace=WorkspaceSpec(prefix="/notes"))
def notes(workspace: Path, params: NoteParams) -> NoteResult:
    (workspace / f"{params.name}.txt").write_text(params.text)
    return NoteResult(files=sum(1 for _ in workspace.iterdir()))
