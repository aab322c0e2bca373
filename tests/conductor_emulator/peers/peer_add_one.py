"""A workspace-free perago 0.6.1 task module, run unchanged by the upstream runtime."""

from pydantic import BaseModel

from perago import task


class Params(BaseModel):
    value: int


class Result(BaseModel):
    value: int


@task(name="peer_add_one", owner_email="emulator@example.com")
def add_one(params: Params) -> Result:
    return Result(value=params.value + 1)
