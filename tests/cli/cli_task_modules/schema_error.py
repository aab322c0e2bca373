"""A contract model Pydantic cannot express as JSON schema (a Callable field)."""

from collections.abc import Callable

from pydantic import BaseModel

from perago import task


class P(BaseModel):
    hook: Callable[[int], int]


class Out(BaseModel):
    ok: bool


@task(name="cli.schemaerror", owner_email="a@example.com")
def run(params: P) -> Out:
    return Out(ok=True)
