"""Declares two tasks: loading it is an error."""

from pydantic import BaseModel

from perago import task


class P(BaseModel):
    a: int


class R(BaseModel):
    b: int


@task(name="first", owner_email="o@example.net")
def first(params: P) -> R:
    return R(b=params.a)


@task(name="second", owner_email="o@example.net")
def second(params: P) -> R:
    return R(b=params.a)
