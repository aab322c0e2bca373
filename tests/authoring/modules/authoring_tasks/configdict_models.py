"""ConfigDict-configured contract models (own and inherited): the schema overrides their `extra`,
and the CLI names them in a warning, in graph order."""

from pydantic import BaseModel, ConfigDict

from perago import task


class Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: int


class Stripping(Forbidding):
    b: str


class Plain(BaseModel):
    c: int


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    plain: Plain
    stripped: Stripping


class ConfiguredParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frozen: Frozen
    forbidding: list[Forbidding]


class Allowing(BaseModel):
    model_config = ConfigDict(extra="allow")

    d: int


class ConfiguredResult(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    nested: Allowing
    plain: Plain


@task(name="config.models", owner_email="config@example.net")
def configured(params: ConfiguredParams) -> ConfiguredResult:
    return ConfiguredResult(nested=Allowing(d=1), plain=Plain(c=1))
