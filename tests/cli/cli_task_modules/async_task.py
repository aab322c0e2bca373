from pydantic import BaseModel

from perago import task


class P(BaseModel):
    x: int


@task(name="cli.async", owner_email="a@example.com")
async def run(params: P) -> P:
    return params
