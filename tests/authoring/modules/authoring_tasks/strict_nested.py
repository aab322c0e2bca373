"""strict_params=True closes params objects at every nesting level; dict[str, X] objects stay untouched."""

from pydantic import BaseModel

from perago import task


class Leaf(BaseModel):
    value: int


class Branch(BaseModel):
    leaves: list[Leaf]
    named: dict[str, Leaf]
    optional_leaf: Leaf | None = None


class StrictParams(BaseModel):
    branch: Branch
    counts: dict[str, int] = {}


class StrictResult(BaseModel):
    leaf: Leaf


@task(name="tree.walk", owner_email="tree@example.net", strict_params=True)
def walk(params: StrictParams) -> StrictResult:
    return StrictResult(leaf=params.branch.leaves[0])
