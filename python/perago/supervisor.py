"""Process mode: Python validates the settings, then the Rust loop in `perago._core` runs.

The loop (`_core.run_supervisor`) takes the workspace-root lock for its whole life,
sweeps abandoned attempt workspaces, starts the broker and the executors, restarts
what dies with the 1, 2, 4 ... 30 s backoff, drains on SIGINT/SIGTERM and returns how
it ended. With a spare command it also keeps one warm spare executor (`perago.spare`,
one more idle interpreter) that it promotes into a dead executor's slot instead of
booting a cold one. Nothing here polls or handles signals; this module only turns
configuration into plain values and the outcome into an exit code and a message.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from perago import _core
from perago.errors import RuntimeConfigError

if TYPE_CHECKING:
    from perago.launch import StartPlan

DEFAULT_GC_TTL = timedelta(hours=24)
DEFAULT_GC_INTERVAL = timedelta(hours=1)
HEALTHY_RUN = timedelta(seconds=60)
BOOT_FAILURE_LIMIT = 3
_PREFIX = re.compile(r"[A-Za-z0-9]+")


def broker_command(module_target: str) -> list[str]:
    """`python -m perago.broker <module>`, with this interpreter."""
    return [sys.executable, "-m", "perago.broker", module_target]


def executor_command(module_target: str) -> list[str]:
    """`python -m perago.executor <module>`, with this interpreter."""
    return [sys.executable, "-m", "perago.executor", module_target]


def spare_command(module_target: str) -> list[str]:
    """`python -m perago.spare <module>`, with this interpreter."""
    return [sys.executable, "-m", "perago.spare", module_target]


@dataclass(frozen=True)
class SupervisorSettings:
    """What the loop needs, as plain values.

    `backoff_unit` scales the restart sequence (1 s in production), `healthy_after` is
    the uptime after which a slot's backoff starts over, and `boot_failure_limit` is how
    many consecutive deaths before ready stop the runtime; tests shrink them.
    `spare_command` starts the warm spare executor; `None` runs without one.
    """

    workspace_root: Path
    worker_id_prefix: str
    process_count: int
    broker_command: Sequence[str]
    executor_command: Sequence[str]
    spare_command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    gc_ttl: timedelta = DEFAULT_GC_TTL
    gc_interval: timedelta = DEFAULT_GC_INTERVAL
    force_kill_after: timedelta | None = None
    backoff_unit: timedelta = timedelta(seconds=1)
    healthy_after: timedelta = HEALTHY_RUN
    boot_failure_limit: int = BOOT_FAILURE_LIMIT

    def __post_init__(self) -> None:
        count = self.process_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise RuntimeConfigError("worker process count must be at least 1")
        prefix = (
            self.worker_id_prefix.strip()
            if isinstance(self.worker_id_prefix, str)
            else ""
        )
        if not prefix:
            raise RuntimeConfigError("PERAGO_WORKER_ID_PREFIX must not be empty")
        if not _PREFIX.fullmatch(prefix):
            raise RuntimeConfigError(
                "PERAGO_WORKER_ID_PREFIX must contain only ASCII letters and digits"
            )
        object.__setattr__(self, "worker_id_prefix", prefix)
        for name in ("broker_command", "executor_command", "spare_command"):
            command = getattr(self, name)
            if name == "spare_command" and command is None:
                continue
            if (
                isinstance(command, str)
                or not command
                or not all(isinstance(part, str) for part in command)
            ):
                raise RuntimeConfigError(f"{name} must be a non-empty list of strings")
        for name in ("gc_ttl", "gc_interval", "backoff_unit", "healthy_after"):
            if getattr(self, name) < timedelta(0):
                raise RuntimeConfigError(f"{name} must not be negative")
        if self.gc_interval <= timedelta(0):
            raise RuntimeConfigError("PERAGO_WORKSPACE_GC_INTERVAL must be positive")
        if self.force_kill_after is not None and self.force_kill_after <= timedelta(0):
            raise RuntimeConfigError(
                "PERAGO_SHUTDOWN_FORCE_KILL_AFTER must be positive"
            )
        if self.boot_failure_limit < 1:
            raise RuntimeConfigError("boot_failure_limit must be at least 1")
        bad = [
            key
            for key, value in self.env.items()
            if not isinstance(key, str) or not isinstance(value, str)
        ]
        if bad:
            raise RuntimeConfigError(
                f"child environment must map str to str; bad entries: {bad[:3]}"
            )


def supervise(settings: SupervisorSettings) -> _core.SupervisorOutcome:
    """Run the process tree until it is drained. Call from the main thread.

    Raises `RuntimeConfigError` when the workspace root is locked by another supervisor
    (the message names its pid). The main thread is required: children are bound to the
    life of the thread that spawns them, and the loop takes SIGINT/SIGTERM from it.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("perago's supervisor must run in the main thread")
    force = settings.force_kill_after
    return _core.run_supervisor(
        workspace_root=Path(settings.workspace_root),
        worker_id_prefix=settings.worker_id_prefix,
        process_count=settings.process_count,
        broker_command=list(settings.broker_command),
        executor_command=list(settings.executor_command),
        spare_command=None if settings.spare_command is None else list(settings.spare_command),
        env=list(settings.env.items()),
        gc_ttl_seconds=settings.gc_ttl.total_seconds(),
        gc_interval_seconds=settings.gc_interval.total_seconds(),
        force_kill_after_seconds=None if force is None else force.total_seconds(),
        backoff_unit_seconds=settings.backoff_unit.total_seconds(),
        healthy_after_seconds=settings.healthy_after.total_seconds(),
        boot_failure_limit=settings.boot_failure_limit,
    )


def report_outcome(
    outcome: _core.SupervisorOutcome, stream: TextIO | None = None
) -> int:
    """Print an `error:` line (and the failing child's last stderr lines) unless the stop was clean."""
    out = sys.stderr if stream is None else stream
    if outcome.exit_code != 0:
        out.write(f"error: {outcome.message}\n")
        if outcome.stderr_tail:
            out.write("last stderr lines of the failing process:\n")
            for line in outcome.stderr_tail:
                out.write(f"    {line}\n")
        out.flush()
    return outcome.exit_code


def settings_for_plan(plan: StartPlan, *, processes: int) -> SupervisorSettings:
    """Settings for `perago start` from its checked plan (config, module target)."""
    config = plan.config
    return SupervisorSettings(
        workspace_root=config.workspace_root,
        worker_id_prefix=config.worker_id_prefix,
        process_count=processes,
        broker_command=broker_command(plan.module_target),
        executor_command=executor_command(plan.module_target),
        spare_command=spare_command(plan.module_target),
        gc_ttl=config.workspace_gc_ttl,
        gc_interval=config.workspace_gc_interval,
        force_kill_after=config.shutdown_force_kill_after,
    )


def run_supervisor(plan: StartPlan, *, processes: int) -> int:
    """`perago start` in process mode: supervise until drained; return the exit code."""
    return report_outcome(supervise(settings_for_plan(plan, processes=processes)))


__all__ = [
    "SupervisorSettings",
    "broker_command",
    "executor_command",
    "report_outcome",
    "run_supervisor",
    "settings_for_plan",
    "spare_command",
    "supervise",
]
