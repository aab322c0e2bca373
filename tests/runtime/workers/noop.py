"""The benchmark task: does nothing, so the numbers measure perago."""

from __future__ import annotations

from pydantic import BaseModel

from perago import task


class NoParams(BaseModel):
    pass


class NoResult(BaseModel):
    pass


@task(name="runtime.noop", owner_email="runtime-tests@example.com")
def noop(params: NoParams) -> NoResult:
    return NoResult()
