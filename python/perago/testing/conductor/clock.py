"""Time as the emulated server sees it.

Every timestamp the emulator writes (epoch milliseconds, as Conductor does) and every
deadline it checks — queue visibility, response/poll/task/workflow timeouts, retry
delays, token expiry — reads one clock object. Tests hand in a `ManualClock` and call
`advance()` instead of sleeping; the emulator notices the new time at its next request
or background tick (at most ~50 ms later in real time).

Long-poll waits and injected latency are wire behaviour and always use real time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the emulator needs from a clock: the current time in epoch milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The machine's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to, so timeout tests do not sleep.

    Starts at `start_ms` (default: the wall-clock time at construction, so timestamps
    look real). Safe to advance from a test thread while the emulator runs in another.
    """

    def __init__(self, start_ms: int | None = None) -> None:
        self._now_ms = SystemClock().now_ms() if start_ms is None else int(start_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> int:
        """Move time forward by `seconds` (must not be negative); returns the new time."""
        if seconds < 0:
            raise ValueError(f"ManualClock.advance: seconds must be >= 0, got {seconds}")
        with self._lock:
            self._now_ms += round(seconds * 1000)
            return self._now_ms
