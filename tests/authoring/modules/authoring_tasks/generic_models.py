"""Generic models, discriminated unions and a top-level self-referencing output (schema `{}`)."""

from typing import Generic, Literal, TypeVar, Union

from pydantic import BaseModel, Field

from perago import task

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool = True


class PetParams(BaseModel):
    pets: Page[Union[Cat, Dog]]
    favourite: Union[Cat, Dog] = Field(discriminator="kind")
    ints: Page[int] | None = None


class TreeNode(BaseModel):
    name: str
    children: list["TreeNode"] = []


@task(name="pets.tree", owner_email="pets@example.net")
def tree(params: PetParams) -> TreeNode:
    return TreeNode(name="root")
