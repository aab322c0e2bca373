"""Float defaults and bounds are rendered with a decimal point or exponent, as Python's json does."""

from decimal import Decimal

from pydantic import BaseModel, Field

from perago import task


class Tuning(BaseModel):
    zero: float = 0.0
    one: float = 1
    half: float = Field(default=0.5, ge=0.25, le=1.5)
    tiny: float = 1e-05
    huge: float = 1e20
    negative: float = -2.75
    step: float = Field(default=0.1, multiple_of=0.05)
    ratio: Decimal = Decimal("1.25")
    weights: list[float] = [1.0, 2.5]
    maybe: float | None = 3.0


class TuningResult(BaseModel):
    score: float = Field(gt=0.0, lt=100.0)


@task(name="ml.tune", owner_email="ml@example.net")
def tune(params: Tuning) -> TuningResult:
    return TuningResult(score=params.half)
