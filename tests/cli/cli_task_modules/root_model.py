from pydantic import BaseModel, RootModel

from perago import task


class Items(RootModel[list[int]]):
    pass


class Out(BaseModel):
    total: int


@task(name="cli.rootmodel", owner_email="a@example.com")
def run(params: Items) -> Out:
    return Out(total=sum(params.root))
