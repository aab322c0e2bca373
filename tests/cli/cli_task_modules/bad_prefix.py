"""WorkspaceSpec rejects the prefix inside a Pydantic validator: a ValidationError at import."""

from pathlib import Path

from pydantic import BaseModel

from perago import WorkspaceSpec, task


class P(BaseModel):
    x: int


@task(name="cli.badprefix", owner_email="a@example.com", workspace=WorkspaceSpec(prefix="../outside"))
def run(workspace: Path, params: P) -> P:
    return params
