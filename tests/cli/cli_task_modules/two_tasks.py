from pydantic import BaseModel

from perago import task


class P(BaseModel):
    x: int


@task(name="cli.one", owner_email="a@example.com")
def one(params: P) -> P:
    return params


@task(name="cli.two", owner_email="a@example.com")
def two(params: P) -> P:
    return params
