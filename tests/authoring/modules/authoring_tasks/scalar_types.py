"""Scalar and container types: dates, UUIDs, bytes, paths, unions, Annotated constraints, Any."""

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Union
from uuid import UUID

from pydantic import AnyUrl, BaseModel, Field, conint, constr

from perago import task


class ScalarParams(BaseModel):
    when: dt.datetime
    day: dt.date = dt.date(2026, 1, 2)
    span: dt.timedelta | None = None
    ident: UUID
    blob: bytes = b""
    location: Path = Path("a/b")
    either: Union[int, str]
    bounded: Annotated[int, Field(ge=1, le=9)] = 5
    short: constr(min_length=1, max_length=3) = "abc"
    positive: conint(gt=0) = 1
    anything: Any = None
    url: AnyUrl | None = None
    matrix: list[list[int]] = [[1, 2], [3]]
    frozen_ids: frozenset[int] = frozenset()


class ScalarResult(BaseModel):
    echoed: dict[str, Any]
    stamp: dt.datetime | None = None


@task(name="types.scalar", owner_email="types@example.net")
def scalar(params: ScalarParams) -> ScalarResult:
    return ScalarResult(echoed={})
