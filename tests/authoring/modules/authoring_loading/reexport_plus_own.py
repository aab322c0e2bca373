"""Re-exports a foreign task and declares its own: only its own counts."""

from pydantic import BaseModel

from authoring_tasks.check_license import check_license
from perago import task


class P(BaseModel):
    a: int


class R(BaseModel):
    b: int


@task(name="own", owner_email="o@example.net")
def own(params: P) -> R:
    return R(b=params.a)


__all__ = ["check_license", "own"]
