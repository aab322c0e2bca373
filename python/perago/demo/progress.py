"""Following the submitted workflows to their end, and drawing that on stderr.

While the workers are busy, progress comes from one cheap question per tick, the queue
size: what the workers have taken is what was submitted minus what still waits, and at
most one task per worker is taken but not done. Once the queue is empty,
`WorkflowTracker` reads every workflow once, timestamps included, for the summary; it
walks them in submission order and stops at the first one still running. Reading them
only then keeps the demo's own requests out of the emulator while the rate is measured.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from perago.demo.conductor_admin import ConductorAdmin

TERMINAL_WORKFLOW_STATUSES = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})


class WorkflowTracker:
    """Follows `workflow_ids` (in submission order; None = not submitted yet)."""

    def __init__(self, admin: ConductorAdmin, workflow_ids: Sequence[str | None]) -> None:
        self._admin = admin
        self._ids = workflow_ids
        self.finished: list[dict[str, Any]] = []

    @property
    def all_finished(self) -> bool:
        return len(self.finished) == len(self._ids)

    def refresh(self, limit: int | None = None) -> int:
        """Read newly finished workflows, oldest first, at most `limit` of them (so a caller
        that also draws gets control back); returns how many were new."""
        before = len(self.finished)
        end = len(self._ids) if limit is None else min(len(self._ids), before + limit)
        while len(self.finished) < end:
            workflow_id = self._ids[len(self.finished)]
            if workflow_id is None:
                break
            workflow = self._admin.workflow(workflow_id)
            if workflow.get("status") not in TERMINAL_WORKFLOW_STATUSES:
                break
            self.finished.append(workflow)
        return len(self.finished) - before


class ProgressBar:
    """`[#####.....]  done/total  rate tasks/s`, redrawn in place on a terminal; on a pipe
    or file, one plain line at most every `plain_interval` seconds."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None = None, plain_interval: float = 1.0) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.plain_interval = plain_interval
        self.started = time.monotonic()
        self._last_plain = 0.0
        self._stopped: float | None = None
        self._last_drawn: tuple[int, int] | None = None

    def stop_clock(self) -> None:
        """Later draws show the rate as of now (what follows is the demo's bookkeeping)."""
        if self._stopped is None:
            self._stopped = time.monotonic()

    def draw(self, done: int, submitted: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.live and not final and now - self._last_plain < self.plain_interval:
            return
        if not self.live and final and self._last_drawn == (done, submitted):
            return
        self._last_plain, self._last_drawn = now, (done, submitted)
        elapsed = (self._stopped or now) - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:>{len(str(self.total))}}/{self.total} done"
        if submitted < self.total:
            line += f", {submitted} submitted"
        line += f", {rate:,.0f} tasks/s"
        if self.live:
            self.stream.write(f"\r\033[K{line}" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
