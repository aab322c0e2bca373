"""Jittered exponential backoff for Conductor calls that failed, and empty-poll pacing.

Jitter matters because every worker of a deployment sees the same Conductor outage at
the same moment; without it they all come back in lockstep. Each delay is drawn
uniformly from the upper half of the exponential step ("equal jitter"), so it never
collapses to zero and never exceeds the cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """`delay(n)` for the n-th consecutive failure (n >= 1): base·2^(n-1), capped, jittered."""

    base_seconds: float
    cap_seconds: float

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        step = min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(failures, 1) - 1, 32))
        draw = (rng or random).random()
        return step / 2 + draw * step / 2


POLL_ERROR_BACKOFF = Backoff(base_seconds=0.5, cap_seconds=120.0)
POLL_AUTH_BACKOFF = Backoff(base_seconds=1.0, cap_seconds=60.0)
UPDATE_RETRY_BACKOFF = Backoff(base_seconds=0.25, cap_seconds=30.0)
LEASE_RETRY_BACKOFF = Backoff(base_seconds=0.5, cap_seconds=10.0)

EMPTY_POLL_PACING_CAP_SECONDS = 0.1


def empty_poll_pause(consecutive_empty_polls: int) -> float:
    """Least time between two poll starts after k empty answers: 1 ms·2^k, at most 100 ms.

    A long-polling server already waits on its side, so this only matters for servers
    that answer an empty queue at once.
    """
    if consecutive_empty_polls <= 0:
        return 0.0
    return min(0.001 * 2 ** min(consecutive_empty_polls, 10), EMPTY_POLL_PACING_CAP_SECONDS)
