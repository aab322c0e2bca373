from pathlib import Path

from pydantic import BaseModel

from perago import WorkspaceSpec, forbid_glob, require_file, task


class Params(BaseModel):
    day: str


class Result(BaseModel):
    rows: int


@task(
    name="cli.features.build",
    owner_email="data@example.com",
    workspace=WorkspaceSpec(prefix="/features", pre=[require_file("raw/input.csv")], post=[forbid_glob("**/*.tmp")]),
)
def build(workspace: Path, params: Params) -> Result:
    return Result(rows=0)
