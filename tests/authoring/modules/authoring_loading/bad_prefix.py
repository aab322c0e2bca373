"""A WorkspaceSpec error at import time propagates from load_module_task unchanged (a ValidationError)."""

from pathlib import Path

from pydantic import BaseModel

from perago import WorkspaceSpec, task


class P(BaseModel):
    a: int


class R(BaseModel):
    b: int


@task(name="bad", owner_email="o@example.net", workspace=WorkspaceSpec(prefix="../outside"))
def bad(workspace: Path, params: P) -> R:
    return R(b=params.a)
