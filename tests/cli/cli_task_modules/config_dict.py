from pydantic import BaseModel, ConfigDict

from perago import task


class Inner(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    label: str


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inner: Inner


class Out(BaseModel):
    ok: bool


@task(name="cli.configdict", owner_email="a@example.com")
def run(params: Params) -> Out:
    return Out(ok=True)
