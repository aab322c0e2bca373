"""One attempt of a task: Conductor task in, TaskResult out, every failure classified.

The flow (runtime.md §4.4, with W29 fixed): snapshot the Conductor task (§4.1) → split
the input envelope → validate `params` (and, for workspace tasks, the workspace
reference) before anything expensive happens → run the body → validate the result →
COMPLETED `{"result": ...}` (plus `workspace` for workspace tasks). Any `Exception`
on the way becomes a FAILED or FAILED_WITH_TERMINAL_ERROR result (`result.py`); a bad
input or a raising task fails that task only, never the worker.

Every attempt writes a `task attempt started` record (DEBUG: one record per task is
what a busy worker can afford at INFO, and the call is skipped while no sink takes DEBUG)
and a `task attempt finished` record (INFO when completed, WARNING with reason and
sanitised traceback when failed) with the duration; both carry task id, workflow id,
execution id, worker id, task name and retry count — ids only, never input values
(runtime.md W14, W15).

Workspace tasks need a `WorkspaceRuntime` (LakeFS download, guardrails, publication);
this module only defines the seam. Without one, a workspace task fails with a reason
that says so instead of pretending to run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

from loguru import logger
from pydantic_core import SchemaValidator, core_schema

from perago.errors import StaleAttemptError, TaskInputError
from perago.metrics import MetricRecorder, RuntimeMetricContext, TaskAttemptMetricContext
from perago.models import WorkspaceInput
from perago.result import RuntimeTaskResult, completed, failed, result_for_exception, task_result_json
from perago.runtime_logging import debug_records_wanted, log_task_record
from perago.task import TaskDefinition

NO_WORKSPACE_RUNTIME = (
    "workspace tasks need the LakeFS workspace runtime, and this worker was started without one"
)
NO_METRICS_RECORDER = "metrics-enabled tasks need a metrics recorder, and this worker was started without one"

# (snapshot field, Conductor key, type it is converted to) of the fields every task must carry
_SNAPSHOT_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("workflow_instance_id", "workflowInstanceId", str),
    ("task_id", "taskId", str),
    ("retry_count", "retryCount", int),
    ("task_def_name", "taskDefName", str),
    ("reference_task_name", "referenceTaskName", str),
    ("seq", "seq", int),
    ("status", "status", str),
)
_SNAPSHOT_KEYS = tuple(key for _, key, _ in _SNAPSHOT_FIELDS)
_SNAPSHOT_TYPES = tuple(kind for _, _, kind in _SNAPSHOT_FIELDS)
_OPTIONAL_TASK_KEYS = ("inputData", "iteration", "retriedTaskId", "responseTimeoutSeconds")
_INPUT_DATA = len(_SNAPSHOT_FIELDS)  # where `input_data` comes in the snapshot's fields

# Conductor task JSON → a dict of only the keys an attempt reads. A polled task carries its
# workflow task and task definition too (about 100 values) that no attempt looks at:
# parsing past them costs less than half of building them all with `from_json`.
_TASK_FIELDS = SchemaValidator(
    core_schema.typed_dict_schema(
        {
            key: core_schema.typed_dict_field(core_schema.any_schema(), required=False)
            for key in (*_SNAPSHOT_KEYS, *_OPTIONAL_TASK_KEYS)
        },
        extra_behavior="ignore",
    )
)


@dataclass(frozen=True, slots=True)
class AttemptSnapshot:
    """The fields of a Conductor task an attempt depends on (runtime.md §4.1)."""

    workflow_instance_id: str
    task_id: str
    retry_count: int
    task_def_name: str
    reference_task_name: str
    seq: int
    status: str
    input_data: Mapping[str, Any]
    iteration: int = 0
    retried_task_id: str | None = None
    response_timeout_seconds: int | None = None

    @classmethod
    def from_task(cls, task: Mapping[str, Any]) -> AttemptSnapshot:
        """Raise `TaskInputError` naming the first missing field (snake_case) or a non-mapping input."""
        return cls(*_snapshot_values(task))


def _snapshot_values(task: Mapping[str, Any]) -> tuple[Any, ...]:
    """`AttemptSnapshot.from_task`'s checks and conversions, giving the fields in order: a plain
    attempt needs only those and `input_data`, not the frozen object (an `object.__setattr__`
    per field is most of its cost)."""
    get = task.get
    raw = tuple(map(get, _SNAPSHOT_KEYS))
    if None in raw:
        # Field by field, so that a bad value before the first missing field still fails first.
        for (name, _key, convert), value in zip(_SNAPSHOT_FIELDS, raw, strict=True):
            if value is None:
                raise TaskInputError(f"Conductor task is missing required field {name}")
            convert(value)
    required = tuple(map(type.__call__, _SNAPSHOT_TYPES, raw))  # str(value), int(value), ... without a generator
    input_data = get("inputData")
    if input_data is None:
        raise TaskInputError("Conductor task is missing required field input_data")
    if type(input_data) is not dict and not isinstance(input_data, Mapping):
        raise TaskInputError("Conductor task field input_data must be a mapping")
    retried = get("retriedTaskId")
    timeout = get("responseTimeoutSeconds")
    return (
        *required,
        input_data,
        int(get("iteration") or 0),
        None if retried is None else str(retried),
        None if timeout is None else int(timeout),
    )


def new_execution_id() -> str:
    """A fresh execution id: UUID4 as 32 lowercase hex characters (runtime.md §4.2)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Attempt:
    """One dispatch of a task: the snapshot, its execution id and the worker running it."""

    snapshot: AttemptSnapshot
    execution_id: str
    worker_id: str


WorkspaceBody = Callable[[Path], dict[str, Any]]
"""Runs the task function on the attempt workspace; returns the validated, JSON-ready result."""


class WorkspaceRuntime(Protocol):
    """What a workspace task needs beyond this module (attempt directory, LakeFS, fences).

    `run_attempt` prepares the attempt workspace for `workspace`, runs the pre guardrails,
    calls `body(directory)`, runs the post guardrails, then completes or publishes, and
    returns the Conductor output `{"workspace": {...}, "result": ...}`. It raises to fail
    the attempt; the exception is classified like any other. The shape matches
    `perago.workspace.run_workspace_attempt`, which an implementation wraps.
    """

    def run_attempt(self, attempt: Attempt, workspace: WorkspaceInput, body: WorkspaceBody) -> dict[str, Any]: ...


def conductor_attempt_fence(get_task: Callable[[str], Mapping[str, Any]]) -> Callable[[Attempt], None]:
    """The attempt fence (runtime.md §4.3) over `get_task` (e.g. `ConductorClient.get_task`).

    Reloads the task and raises `StaleAttemptError` unless it is still IN_PROGRESS with the
    same workflow, task id and retry count. The reason names what changed (perago 0.6
    sent the bare task id, W15). A reload failure propagates and fails the attempt.
    """

    def fence(attempt: Attempt) -> None:
        expected = attempt.snapshot
        current = AttemptSnapshot.from_task(get_task(expected.task_id))
        changes = [
            f"{label} is {now!r}, not {then!r}"
            for label, now, then in (
                ("status", current.status, "IN_PROGRESS"),
                ("workflow", current.workflow_instance_id, expected.workflow_instance_id),
                ("task id", current.task_id, expected.task_id),
                ("retry count", current.retry_count, expected.retry_count),
            )
            if now != then
        ]
        if changes:
            raise StaleAttemptError(
                f"attempt of task {expected.task_id} is no longer current in Conductor: " + "; ".join(changes)
            )

    return fence


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    """The outcome of one attempt, ready to be reported."""

    task_id: str
    workflow_instance_id: str
    execution_id: str
    result: RuntimeTaskResult

    def task_result_json(self, conductor_worker_id: str) -> bytes:
        return task_result_json(
            self.result,
            task_id=self.task_id,
            workflow_instance_id=self.workflow_instance_id,
            worker_id=conductor_worker_id,
        )


class AttemptRunner:
    """Runs attempts of one task definition; one instance serves every attempt of a worker."""

    def __init__(
        self,
        definition: TaskDefinition,
        *,
        worker_id: str,
        failure_reason_max_length: int,
        workspace_runtime: WorkspaceRuntime | None = None,
        metrics: MetricRecorder | None = None,
    ) -> None:
        if failure_reason_max_length < 1:
            raise ValueError("failure_reason_max_length must be at least 1")
        self.definition = definition
        self.worker_id = worker_id
        self.failure_reason_max_length = failure_reason_max_length
        self._contract = definition.contract
        # Read on every attempt: looked up once here.
        self._task_name = definition.name
        self._fn = definition.fn
        self._has_workspace = definition.has_workspace
        self._metrics_spec = definition.metrics
        self._workspace_runtime = workspace_runtime
        self._metrics = metrics
        spec = self._metrics_spec
        self._attempt_duration: Callable[[float], None] | None = None
        if metrics is not None and spec is not None and spec.attempts:
            context = RuntimeMetricContext(task_name=definition.name)

            def record_duration(seconds: float) -> None:
                metrics.runtime_histogram("task_attempt_duration_seconds", seconds, context=context)

            self._attempt_duration = record_duration

    def run_json(self, task_json: bytes, execution_id: str, conductor_worker_id: str) -> bytes:
        """Bytes in, bytes out: Conductor task JSON → TaskResult JSON (the executor's hot path).

        Task JSON that does not parse to an object still yields a FAILED TaskResult (with
        empty ids, which Conductor will refuse and the broker will log), never an exception.
        """
        try:
            task = _TASK_FIELDS.validate_json(task_json)
        except ValueError:  # not JSON, or not an object
            logger.error("executor received a task that is not a JSON object", execution_id=execution_id)
            result = failed("Conductor task is not a JSON object", max_length=self.failure_reason_max_length)
            return task_result_json(result, task_id="", workflow_instance_id="", worker_id=conductor_worker_id)
        return self.run(task, execution_id).task_result_json(conductor_worker_id)

    def run(self, task: Mapping[str, Any], execution_id: str | None = None) -> FinishedAttempt:
        """Run one attempt of `task` (a Conductor task as a dict); never raises for task problems."""
        execution_id = execution_id or new_execution_id()
        task_id = str(task.get("taskId") or "")
        workflow_instance_id = str(task.get("workflowInstanceId") or "")
        started = perf_counter()
        ids = {
            "task_id": task_id,
            "workflow_instance_id": workflow_instance_id,
            "execution_id": execution_id,
            "worker_id": self.worker_id,
            "task_name": self._task_name,
            "retry_count": task.get("retryCount"),
        }
        if debug_records_wanted():
            logger.debug("task attempt started", **ids)
        try:
            result = self._run_phases(_snapshot_values(task), execution_id)
        except Exception as exc:
            result = result_for_exception(exc, max_length=self.failure_reason_max_length, task_id=task_id)
        elapsed = perf_counter() - started
        if self._attempt_duration is not None:
            self._attempt_duration(elapsed)
        duration = round(elapsed, 6)
        if result.status == "COMPLETED":
            log_task_record("INFO", "task attempt finished", {"status": result.status, "duration_seconds": duration, **ids})
        else:
            fields = {
                "status": result.status,
                "duration_seconds": duration,
                "reason": result.reason_for_incompletion,
                "traceback": result.failure_log,
                **ids,
            }
            log_task_record("WARNING", "task attempt finished", fields)
        return FinishedAttempt(task_id, workflow_instance_id, execution_id, result)

    def _run_phases(self, snapshot_values: tuple[Any, ...], execution_id: str) -> RuntimeTaskResult:
        contract = self._contract
        raw_workspace, raw_params = contract.split_input(snapshot_values[_INPUT_DATA])
        workspace = contract.validate_workspace(raw_workspace) if self._has_workspace else None
        params = contract.validate_params(raw_params)
        fn = self._fn
        if workspace is None and self._metrics_spec is None:
            return completed(contract.output(contract.validate_result(fn(params))))
        attempt = Attempt(AttemptSnapshot(*snapshot_values), execution_id, self.worker_id)
        metrics = None
        if self._metrics_spec is not None:
            if self._metrics is None:
                return failed(NO_METRICS_RECORDER, max_length=self.failure_reason_max_length)
            metrics = self._bound_metrics(attempt, self._metrics)
        if workspace is None:
            return completed(contract.output(contract.validate_result(fn(params, metrics))))
        runtime = self._workspace_runtime
        if runtime is None:
            return failed(NO_WORKSPACE_RUNTIME, max_length=self.failure_reason_max_length)
        ran: list[bool] = []

        def body(directory: Path) -> dict[str, Any]:
            raw = fn(directory, params) if metrics is None else fn(directory, params, metrics)
            ran.append(True)
            return contract.result_payload(contract.validate_result(raw))

        output = runtime.run_attempt(attempt, workspace, body)
        if not ran:
            raise RuntimeError("the workspace runtime completed without running the task body")
        return completed(output)

    def _bound_metrics(self, attempt: Attempt, metrics: MetricRecorder) -> MetricRecorder:
        snapshot = attempt.snapshot
        return metrics.with_context(
            TaskAttemptMetricContext(
                task_name=self.definition.name,
                task_id=snapshot.task_id,
                workflow_instance_id=snapshot.workflow_instance_id,
                execution_id=attempt.execution_id,
                worker_id=attempt.worker_id,
                retry_count=snapshot.retry_count,
            )
        )


__all__ = [
    "NO_METRICS_RECORDER",
    "NO_WORKSPACE_RUNTIME",
    "Attempt",
    "AttemptRunner",
    "AttemptSnapshot",
    "FinishedAttempt",
    "WorkspaceBody",
    "WorkspaceRuntime",
    "conductor_attempt_fence",
    "new_execution_id",
]
