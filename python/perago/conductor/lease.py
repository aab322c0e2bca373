"""Keeps leases of running tasks alive: `extendLease` at 0.8 × responseTimeoutSeconds.

A task is tracked from the moment it is polled until its result is delivered or given
up — which spans the body, every update retry and a shutdown drain (runtime.md W4, W16):
the runner, not this class, decides when to untrack. One thread serves all tracked
tasks, sleeping until the earliest due heartbeat (no 1 s ticking). A failed heartbeat
is retried with backoff well before the next regular one; a 404 means Conductor no
longer knows the task, so tracking stops.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from perago.conductor.backoff import LEASE_RETRY_BACKOFF
from perago.conductor.errors import ConductorClientError

LEASE_FRACTION = 0.8
MIN_LEASE_INTERVAL_SECONDS = 1.0

ExtendLease = Callable[[str, str], None]


def lease_interval(response_timeout_seconds: object) -> float | None:
    """Seconds between heartbeats for a task, or None when it needs none (as the SDK decides)."""
    if isinstance(response_timeout_seconds, bool) or not isinstance(response_timeout_seconds, (int, float)):
        return None
    interval = LEASE_FRACTION * response_timeout_seconds
    return interval if interval >= MIN_LEASE_INTERVAL_SECONDS else None


@dataclass(slots=True)
class _Lease:
    task_id: str
    workflow_instance_id: str
    interval: float
    due: float
    failures: int = 0


class LeaseKeeper:
    """Heartbeats every tracked task on one background thread."""

    def __init__(self, extend_lease: ExtendLease, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._extend_lease = extend_lease
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="perago-lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop heartbeating; call only after every task's result was delivered or given up."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def track(self, task_id: str, workflow_instance_id: str, response_timeout_seconds: object) -> None:
        interval = lease_interval(response_timeout_seconds)
        if interval is None:
            return
        lease = _Lease(task_id, workflow_instance_id, interval, self._clock() + interval)
        with self._cond:
            self._leases[task_id] = lease
            heapq.heappush(self._heap, (lease.due, next(self._order), task_id))
            if self._heap[0][2] == task_id:
                self._cond.notify()

    def untrack(self, task_id: str) -> None:
        with self._cond:
            self._leases.pop(task_id, None)
            # Untracked entries stay in the heap until due; rebuild it before they pile up
            # (a busy worker untracks thousands of tasks per responseTimeoutSeconds).
            if len(self._heap) > 2 * len(self._leases) + 1024:
                self._heap = [(lease.due, next(self._order), lease.task_id) for lease in self._leases.values()]
                heapq.heapify(self._heap)

    def tracked(self) -> int:
        with self._cond:
            return len(self._leases)

    def _run(self) -> None:
        while True:
            due = self._next_due()
            if due is None:
                return
            for lease in due:
                self._heartbeat(lease)

    def _next_due(self) -> list[_Lease] | None:
        with self._cond:
            while not self._stopped:
                now = self._clock()
                due: list[_Lease] = []
                while self._heap and self._heap[0][0] <= now:
                    when, _, task_id = heapq.heappop(self._heap)
                    lease = self._leases.get(task_id)
                    if lease is not None and lease.due == when:
                        due.append(lease)
                if due:
                    return due
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)
            return None

    def _heartbeat(self, lease: _Lease) -> None:
        try:
            self._extend_lease(lease.task_id, lease.workflow_instance_id)
        except ConductorClientError as exc:
            if exc.status == 404:
                logger.warning(
                    "stopped extending the lease of a task Conductor no longer knows",
                    task_id=lease.task_id,
                    workflow_instance_id=lease.workflow_instance_id,
                )
                self.untrack(lease.task_id)
                return
            self._reschedule_after_failure(lease, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a heartbeat failure must not end the keeper thread
            self._reschedule_after_failure(lease, exc)
            return
        lease.failures = 0
        self._reschedule(lease, lease.interval)

    def _reschedule_after_failure(self, lease: _Lease, error: Exception) -> None:
        lease.failures += 1
        delay = min(LEASE_RETRY_BACKOFF.delay(lease.failures), lease.interval)
        logger.warning(
            "task lease extension failed; retrying",
            task_id=lease.task_id,
            workflow_instance_id=lease.workflow_instance_id,
            attempt=lease.failures,
            retry_in_seconds=round(delay, 3),
            error=str(error),
        )
        self._reschedule(lease, delay)

    def _reschedule(self, lease: _Lease, delay: float) -> None:
        with self._cond:
            if self._leases.get(lease.task_id) is not lease:
                return
            lease.due = self._clock() + delay
            heapq.heappush(self._heap, (lease.due, next(self._order), lease.task_id))
