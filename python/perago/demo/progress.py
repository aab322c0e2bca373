"""Following the submitted workflows to their end, and drawing that on stderr.

`WorkflowTracker` walks the workflows in submission order and asks Conductor about the
oldest unfinished one until it finds one still running: Conductor hands tasks out
roughly in that order, so this costs about one request per finished workflow, and each
finished workflow is read exactly once, timestamps included, for the summary.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from perago.demo.conductor_admin import ConductorAdmin

TERMINAL_WORKFLOW_STATUSES = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})


class WorkflowTracker:
    def __init__(self, admin: ConductorAdmin) -> None:
        self._admin = admin
        self.submitted: list[str] = []
        self.finished: list[dict[str, Any]] = []

    def submit(self, workflow_id: str) -> None:
        self.submitted.append(workflow_id)

    @property
    def all_finished(self) -> bool:
        return len(self.finished) == len(self.submitted)

    def refresh(self) -> int:
        """Read every newly finished workflow, oldest first; returns how many were new."""
        before = len(self.finished)
        while len(self.finished) < len(self.submitted):
            workflow = self._admin.workflow(self.submitted[len(self.finished)])
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

    def draw(self, done: int, submitted: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.live and not final and now - self._last_plain < self.plain_interval:
            return
        self._last_plain = now
        elapsed = now - self.started
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
