"""Worked example B of spec/authoring.md §7.8: a strict workspace-free task."""

from typing import Literal

from pydantic import BaseModel

from perago import task


class LicenseQuery(BaseModel):
    track_id: str
    territory: Literal["EU", "US", "APAC"]


class LicenseVerdict(BaseModel):
    allowed: bool
    reason: str | None = None


@task(name="catalog.check_license", owner_email="catalog@example.net", strict_params=True)
def check_license(params: LicenseQuery) -> LicenseVerdict:
    return LicenseVerdict(allowed=params.territory != "APAC")
