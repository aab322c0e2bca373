"""Fixtures for supervisor tests; the harness itself is `supervisor_harness.py`."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from supervisor_harness import Runtime, start_supervisor


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Start supervisors for a test; any still running at teardown are SIGKILLed (their
    children die with them)."""
    started: list[Runtime] = []

    def start(**kwargs: Any) -> Runtime:
        runtime = start_supervisor(tmp_path, **kwargs)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        if runtime.process.poll() is None:
            runtime.process.send_signal(signal.SIGKILL)
            runtime.process.wait()
