"""The emulated server's state and its lowest-level bookkeeping.

`EngineState` holds every table (definitions, tasks, workflows, queues, timers, counters)
and the few helpers that keep them consistent: queue pushes and removals, status changes
that free concurrency slots, and the timer heap. `decider.Decider` and `engine.Engine`
build on it; all of it runs on the server's single event-loop thread.
"""

from __future__ import annotations

import heapq
import os
import random
from collections import defaultdict, deque
from collections.abc import Callable
from itertools import count
from typing import Any

from perago.testing.conductor.clock import Clock
from perago.testing.conductor.metadata import MetadataStore
from perago.testing.conductor.queues import TaskQueue
from perago.testing.conductor.records import (
    TERMINAL_TASK_STATUSES,
    TaskRecord,
    WorkflowPlan,
    WorkflowRecord,
)
from perago.testing.conductor.settings import EmulatorSettings


def new_id() -> str:
    """A random UUID v4 string, like `str(uuid.uuid4())` at a third of the cost."""
    digits = os.urandom(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class EngineState:
    """All server state, and the helpers every operation shares."""

    def __init__(self, settings: EmulatorSettings, clock: Clock, seed: int | None = None) -> None:
        self.settings = settings
        self.behaviour = settings.behaviour
        self.clock = clock
        self.now: Callable[[], int] = clock.now_ms  # epoch ms on the injected clock
        self.metadata = MetadataStore(settings.owner_email_mandatory)
        self.tasks: dict[str, TaskRecord] = {}
        self.workflows: dict[str, WorkflowRecord] = {}
        self.queues: dict[str, TaskQueue] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.poll_data: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.in_progress: dict[str, int] = defaultdict(int)
        # Per task type with a concurrentExecLimit: its unfinished tasks in creation order (§5.5).
        self.unfinished: dict[str, dict[str, None]] = defaultdict(dict)
        self.postponed: dict[str, deque[str]] = defaultdict(deque)
        self.hand_outs: dict[str, deque[int]] = defaultdict(deque)
        self.on_push: Callable[[str], None] = lambda name: None
        self._timers: list[tuple[int, int, str]] = []
        self._timer_numbers = count()
        self._plans: dict[tuple[str, int], tuple[int, WorkflowPlan]] = {}
        self._random = random.Random(seed)

    # ------------------------------------------------------------------ time
    def _arm(self, deadline_ms: int, workflow_id: str) -> None:
        heapq.heappush(self._timers, (deadline_ms, next(self._timer_numbers), workflow_id))

    # ------------------------------------------------------------ queues
    def queue(self, name: str) -> TaskQueue:
        found = self.queues.get(name)
        if found is None:
            found = self.queues[name] = TaskQueue(name)
        return found

    def _push(self, task: TaskRecord, delay_ms: int) -> None:
        now = self.now()
        self.queue(task.queue_name).push(task.task_id, now + delay_ms, now)
        if delay_ms <= 0:
            self.on_push(task.queue_name)

    def _unqueue(self, task: TaskRecord) -> None:
        found = self.queues.get(task.queue_name)
        if found is not None:
            found.remove(task.task_id)

    def _leave_in_progress(self, task: TaskRecord) -> None:
        """Bookkeeping when a task stops being IN_PROGRESS (frees a concurrency slot)."""
        name = task.step.name
        self.in_progress[name] -= 1
        if not self.behaviour.release_postponed_on_free_slot:
            return
        waiting = self.postponed.get(name)
        while waiting:
            task_id = waiting.popleft()
            held = self.tasks.get(task_id)
            if held is not None and held.status == "SCHEDULED" and task_id in self.queue(held.queue_name):
                self._push(held, 0)
                return

    def _set_status(self, task: TaskRecord, status: str) -> None:
        if task.status == "IN_PROGRESS" and status != "IN_PROGRESS":
            self._leave_in_progress(task)
        if status in TERMINAL_TASK_STATUSES:
            self._forget_unfinished(task)
        task.status = status

    def _forget_unfinished(self, task: TaskRecord) -> None:
        unfinished = self.unfinished.get(task.step.name)
        if unfinished:
            unfinished.pop(task.task_id, None)
