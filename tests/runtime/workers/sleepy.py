"""A task that takes a while, for drain and lease tests."""

from __future__ import annotations

import time

from pydantic import BaseModel

from perago import task


class SleepParams(BaseModel):
    seconds: float
    tag: str


class SleepResult(BaseModel):
    tag: str


@task(name="runtime.sleepy", owner_email="runtime-tests@example.com")
def sleepy(params: SleepParams) -> SleepResult:
    time.sleep(params.seconds)
    return SleepResult(tag=params.tag)
