"""`perago start` and `perago.start()`: pre-start checks, then run the worker in the foreground.

The checks are perago 0.6's (authoring.md §9.4, runtime.md §1.4), in its order, and all
run before anything is spawned or polled: configuration, Conductor configured, task
module, LakeFS/metrics configuration the task needs, TaskDef validation, and a TaskDef
registered in Conductor under the task's name (decided by HTTP status, never by error
text — W21). `StartCheckFailed` carries the one-line message the CLI prints after
`error: `; unexpected failures name their type and say which step failed (W19).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from pydantic import ValidationError
from pydantic.errors import PydanticInvalidForJsonSchema

from perago import _core
from perago.attempt import AttemptRunner, WorkspaceRuntime
from perago.conductor import ConductorClient, client_from_config, conductor_worker_id
from perago.config import RuntimeConfig, load_runtime_config, parse_execution_mode
from perago.errors import RuntimeConfigError, TaskDefinitionError
from perago.metrics import worker_metrics
from perago.runners.thread import ThreadRunner
from perago.runners.workspace_gc import WorkspaceGcThread, sweep_abandoned
from perago.runtime_logging import configure_process_logging, log_process_started
from perago.supervisor import run_supervisor
from perago.task import TaskDefinition, load_module_task
from perago.taskdef import build_taskdef, config_dict_warning, read_only_budget_warning, reject_root_models
from perago.worker_identity import broker_worker_id, child_environment

if TYPE_CHECKING:
    from perago.metrics_otlp import OtlpMetricRecorder

_REPORTED_AS_IS = (TaskDefinitionError, RuntimeConfigError, ValidationError, PydanticInvalidForJsonSchema)


def _log_warning(text: str) -> None:
    logger.warning(text)


class StartCheckFailed(Exception):
    """A pre-start check failed; `str(exc)` is the message for the `error:` line."""


@dataclass(frozen=True)
class StartPlan:
    """Everything the pre-start checks established, ready to run."""

    module_target: str
    config: RuntimeConfig
    task: TaskDefinition
    execution_mode: str


def check_start(
    module_target: str,
    *,
    execution_mode: str | None = None,
    cwd: Path | None = None,
    warn: Callable[[str], None] = _log_warning,
) -> StartPlan:
    """Run the pre-start checks; raise `StartCheckFailed` with the operator-facing message.

    Warnings (read-only publish budget, ConfigDict models) go to `warn` as they are found,
    so they appear before a later check's error, as in `perago check`.
    """
    step = "load the runtime configuration"
    try:
        config = load_runtime_config(module_target, cwd=cwd)
        mode = parse_execution_mode(execution_mode, name="--execution-mode") if execution_mode else config.execution_mode
        if config.conductor is None:
            raise RuntimeConfigError("CONDUCTOR_SERVER_URL is required for perago start")
        step = f"import the task module {module_target}"
        task = load_module_task(module_target)
        step = "validate the task"
        if task.has_workspace and config.lakefs is None:
            raise RuntimeConfigError("LakeFS config is required for workspace tasks")
        if task.metrics is not None and config.metrics is None:
            raise RuntimeConfigError("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is required for metrics-enabled tasks")
        if task.metrics is not None and task.metrics.worker_capacity and config.metrics.instance_id is None:
            raise RuntimeConfigError("PERAGO_INSTANCE_ID is required when worker_capacity metrics are enabled")
        _warn_if(read_only_budget_warning(task), warn)
        reject_root_models(task)
        _warn_if(config_dict_warning(task), warn)
        build_taskdef(task)
        step = "validate Conductor TaskDef"
        client = client_from_config(config.conductor, worker_id=conductor_worker_id(config.worker_id_prefix))
        try:
            registered = client.taskdef_exists(task.name)
        finally:
            client.close()
        if not registered:
            raise RuntimeConfigError(
                f"Conductor TaskDef '{task.name}' is not registered; run perago extract and register it before start"
            )
    except _REPORTED_AS_IS as exc:
        raise StartCheckFailed(str(exc)) from exc
    except Exception as exc:
        text = str(exc)
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        raise StartCheckFailed(f"failed to {step}: {detail}") from exc
    return StartPlan(module_target, config, task, mode)


def _warn_if(text: str | None, warn: Callable[[str], None]) -> None:
    if text:
        warn(text)


def start(module_target: str, *, processes: int = 1, execution_mode: str | None = None) -> int:
    """Check, then run the task worker of `module_target` until SIGINT/SIGTERM; returns the exit code.

    `processes` is the executor count in process mode and the task-thread count in thread
    mode. Raises `StartCheckFailed` when a pre-start check fails.
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError("worker process count must be at least 1")
    return run(check_start(module_target, execution_mode=execution_mode), processes)


def run(plan: StartPlan, processes: int) -> int:
    """Run a checked plan in the foreground."""
    if plan.execution_mode == "thread":
        return run_thread_mode(plan, threads=processes)
    return run_process_mode(plan, processes=processes)


def run_process_mode(plan: StartPlan, *, processes: int) -> int:
    """Hand over to the Rust supervisor loop (`perago.supervisor`)."""
    return run_supervisor(plan, processes=processes)


def run_thread_mode(plan: StartPlan, *, threads: int) -> int:
    """This process becomes the runner: `<prefix>Broker` identity, JSONL log, N task threads.

    Holds the workspace-root lock throughout; sweeps abandoned attempt workspaces before
    starting and after the drain, and runs the periodic GC meanwhile.
    """
    config = plan.config
    prefix = config.worker_id_prefix
    worker_id = broker_worker_id(prefix)
    root = config.workspace_root
    lock = _core.WorkspaceRootLock.acquire(root)
    try:
        sweep_abandoned(root, when="at startup")
        os.environ.update(child_environment(prefix, worker_id))
        log_file = configure_process_logging(config, module_target=plan.module_target, worker_id=worker_id)
        log_process_started("runner", worker_id=worker_id, module_target=plan.module_target, log_file=log_file)
        assert config.conductor is not None  # checked by check_start
        client = client_from_config(config.conductor, worker_id=conductor_worker_id(prefix))
        metrics = worker_metrics(plan.task, config)
        try:
            return _run_threads(plan, client, worker_id, threads, metrics)
        finally:
            if metrics is not None:
                metrics.shutdown()
    finally:
        lock.release()


def _run_threads(
    plan: StartPlan, client: ConductorClient, worker_id: str, threads: int, metrics: OtlpMetricRecorder | None
) -> int:
    config = plan.config
    task = plan.task
    attempts = AttemptRunner(
        task,
        worker_id=worker_id,
        failure_reason_max_length=config.failure_reason_max_length,
        workspace_runtime=_workspace_runtime(plan, client, metrics) if task.has_workspace else None,
        metrics=metrics,
    )
    busy_slots = None
    if metrics is not None and task.metrics is not None and task.metrics.worker_capacity:
        busy_slots = metrics.set_busy_slots
    deadline = config.shutdown_force_kill_after
    runner = ThreadRunner(
        attempts,
        client,
        threads=threads,
        drain_deadline_seconds=None if deadline is None else deadline.total_seconds(),
        busy_slots=busy_slots,
    )
    root = config.workspace_root
    gc = WorkspaceGcThread(
        root,
        worker_id=worker_id,
        ttl_seconds=config.workspace_gc_ttl.total_seconds(),
        interval_seconds=config.workspace_gc_interval.total_seconds(),
    ).start()
    try:
        return runner.run()
    finally:
        gc.stop()
        sweep_abandoned(root, when="after shutdown")


def _workspace_runtime(
    plan: StartPlan, client: ConductorClient, metrics: OtlpMetricRecorder | None
) -> WorkspaceRuntime:
    """LakeFS download/publication for a workspace task, fenced through `client` (thread mode)."""
    from perago.workspace import workspace_attempts_from_config

    return workspace_attempts_from_config(plan.task, plan.config, client.get_task, metrics)


__all__ = ["StartCheckFailed", "StartPlan", "check_start", "run", "start"]
