"""Fixtures for the Conductor emulator's contract tests: a running emulator on a manual clock
and a REST client for it (see conductor_rest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conductor_rest import Api

from perago.testing.conductor import ConductorEmulator, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def conductor(clock: ManualClock) -> Iterator[ConductorEmulator]:
    with ConductorEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
def api(conductor: ConductorEmulator) -> Iterator[Api]:
    client = Api(conductor.url)
    yield client
    client.close()
