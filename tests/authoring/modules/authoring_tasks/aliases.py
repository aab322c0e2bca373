"""Field aliases: schemas use the validation alias, results are serialized by field name."""

from pydantic import AliasChoices, AliasPath, BaseModel, Field

from perago import task


class Inner(BaseModel):
    item_id: int = Field(alias="itemId")


class AliasParams(BaseModel):
    track_id: str = Field(alias="trackId")
    display_name: str = Field(validation_alias="displayName", serialization_alias="display")
    choice: int = Field(default=0, validation_alias=AliasChoices("choice", "pick"))
    deep: str = Field(default="", validation_alias=AliasPath("outer", 0))
    inner: list[Inner] = []


class AliasResult(BaseModel):
    total_count: int = Field(alias="totalCount")


@task(name="catalog.aliases", owner_email="catalog@example.net")
def aliases(params: AliasParams) -> AliasResult:
    return AliasResult(totalCount=len(params.inner))
