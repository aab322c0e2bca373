from pydantic import BaseModel

from perago import task


class P(BaseModel):
    x: int


@task(name="cli.badsignature", owner_email="a@example.com")
def run(params: P, extra: int) -> P:
    return params
