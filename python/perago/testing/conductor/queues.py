"""Task queues with delayed visibility (spec conductor-api.md §5.1, §5.2, §2.8).

One queue per `tasktype` or `domain:tasktype`. A message is a task id that becomes
visible at push time + delay; popping hands each id out once and acknowledges it
(deletes it) at once, as OSS does. Order is by visibility time, then push order.

Every operation is O(1) or O(log n): visible ids sit in a deque, delayed ones in a heap,
and `members` maps each queued id to its current push number so removals and re-pushes
just invalidate old entries, which are skipped when they surface.
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import count


class TaskQueue:
    """One named queue."""

    __slots__ = ("name", "_ready", "_delayed", "_members", "_pushes")

    def __init__(self, name: str) -> None:
        self.name = name
        self._ready: deque[tuple[str, int]] = deque()
        self._delayed: list[tuple[int, int, str]] = []
        self._members: dict[str, int] = {}
        self._pushes = count()

    def __len__(self) -> int:
        """Every queued message, visible or not (IN_PROGRESS tasks are not queued)."""
        return len(self._members)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._members

    def push(self, task_id: str, visible_at_ms: int, now_ms: int) -> None:
        """Queue `task_id` (replacing any earlier message for it)."""
        push_number = next(self._pushes)
        self._members[task_id] = push_number
        if visible_at_ms <= now_ms:
            self._release_due(now_ms)
            self._ready.append((task_id, push_number))
        else:
            heapq.heappush(self._delayed, (visible_at_ms, push_number, task_id))

    def remove(self, task_id: str) -> bool:
        return self._members.pop(task_id, None) is not None

    def pop(self, now_ms: int) -> str | None:
        """Take the oldest visible message, or None when nothing is visible."""
        self._release_due(now_ms)
        ready = self._ready
        members = self._members
        while ready:
            task_id, push_number = ready.popleft()
            if members.get(task_id) == push_number:
                del members[task_id]
                return task_id
        return None

    def has_visible(self, now_ms: int) -> bool:
        self._release_due(now_ms)
        members = self._members
        ready = self._ready
        while ready and members.get(ready[0][0]) != ready[0][1]:
            ready.popleft()
        return bool(ready)

    def next_visible_at(self) -> int | None:
        """When the earliest delayed message becomes visible (None: no delayed message)."""
        delayed = self._delayed
        members = self._members
        while delayed and members.get(delayed[0][2]) != delayed[0][1]:
            heapq.heappop(delayed)
        return delayed[0][0] if delayed else None

    def _release_due(self, now_ms: int) -> None:
        delayed = self._delayed
        if not delayed or delayed[0][0] > now_ms:
            return
        members = self._members
        ready = self._ready
        while delayed and delayed[0][0] <= now_ms:
            _, push_number, task_id = heapq.heappop(delayed)
            if members.get(task_id) == push_number:
                ready.append((task_id, push_number))


def queue_name(task_type: str, domain: str | None) -> str:
    """`tasktype`, or `domain:tasktype` when a domain is given (an empty one included)."""
    return task_type if domain is None else f"{domain}:{task_type}"
