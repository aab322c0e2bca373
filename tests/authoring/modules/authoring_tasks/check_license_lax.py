"""Example B with the default strict_params=False: params objects stay open."""

from typing import Literal

from pydantic import BaseModel

from perago import task


class LicenseQuery(BaseModel):
    track_id: str
    territory: Literal["EU", "US", "APAC"]


class LicenseVerdict(BaseModel):
    allowed: bool
    reason: str | None = None


@task(name="catalog.check_license", owner_email="catalog@example.net")
def check_license(params: LicenseQuery) -> LicenseVerdict:
    return LicenseVerdict(allowed=params.territory != "APAC")
