"""A RootModel nested in the params graph: every CLI command rejects it."""

from pydantic import BaseModel, RootModel

from perago import task


class Tags(RootModel[list[str]]):
    pass


class TagParams(BaseModel):
    tags: Tags


class TagResult(RootModel[dict[str, int]]):
    pass


@task(name="tags.count", owner_email="tags@example.net")
def count(params: TagParams) -> TagResult:
    return TagResult({})
