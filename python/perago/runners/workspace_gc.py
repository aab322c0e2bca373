"""Attempt-workspace GC for thread mode, where attempts run inside the runner's own process.

Process mode leaves this to the Rust supervisor. In thread mode the runner itself sweeps
every abandoned attempt directory right after taking the workspace-root lock, runs a
periodic pass (`PERAGO_WORKSPACE_GC_TTL` old, every `PERAGO_WORKSPACE_GC_INTERVAL`) that
spares this process's own attempts, and sweeps once more after the drain — the final
sweep perago 0.6 only did in process mode (runtime.md W30). The scan and removal are the
Rust core's (`collect_attempt_workspaces`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from loguru import logger

from perago import _core

MIN_INTERVAL_SECONDS = 0.001


def sweep_abandoned(root: Path, *, when: str) -> int:
    """Remove every attempt directory of a process that no longer runs it (TTL 0)."""
    removed = _core.collect_attempt_workspaces(root, ttl_seconds=0.0, active_owners=set())
    if removed:
        logger.info(f"swept abandoned attempt workspaces {when}", removed_count=len(removed))
    return len(removed)


class WorkspaceGcThread:
    """The periodic pass, on a daemon thread named `perago-workspace-gc`; first pass at once."""

    def __init__(self, root: Path, *, worker_id: str, ttl_seconds: float, interval_seconds: float) -> None:
        self.root = root
        self.ttl_seconds = ttl_seconds
        self.interval_seconds = max(interval_seconds, MIN_INTERVAL_SECONDS)
        self._own = {(worker_id, os.getpid())}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perago-workspace-gc", daemon=True)

    def start(self) -> WorkspaceGcThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_once(self) -> int:
        removed = _core.collect_attempt_workspaces(self.root, ttl_seconds=self.ttl_seconds, active_owners=self._own)
        if removed:
            logger.info("garbage-collected abandoned attempt workspaces", removed_count=len(removed))
        return len(removed)

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - one bad pass must not end GC
                logger.error("workspace garbage collection failed", error=f"{type(exc).__name__}: {exc}")
            if self._stop.wait(self.interval_seconds):
                return
