"""A self-referencing model nested inside the params model (perago 0.6 recursed forever)."""

from pydantic import BaseModel

from perago import task


class Folder(BaseModel):
    name: str
    subfolders: list["Folder"] = []


class TreeParams(BaseModel):
    root: Folder


class TreeResult(BaseModel):
    folders: int


@task(name="tree.count", owner_email="tree@example.net")
def count(params: TreeParams) -> TreeResult:
    return TreeResult(folders=1)
