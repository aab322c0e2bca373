"""What one attempt produced, how exceptions map to Conductor statuses, and the wire JSON.

Classification (runtime.md §5.3, authoring.md §5.2), first match wins:
`TaskTerminalError` and `PreGuardrailViolation` → FAILED_WITH_TERMINAL_ERROR; `TaskFailed`
→ FAILED with the author's reason; anything else → FAILED.

Reasons are better than perago 0.6's (runtime.md W15) while the author's own words stay
untouched: a `TaskFailed`/`TaskTerminalError` reason and perago's own error sentences
are sent verbatim; any other exception is sent as `<ExceptionType>: <message>` (just
the type when the message is empty); Pydantic validation errors are re-rendered without
the offending input values, so a secret in a bad input never reaches Conductor or the
logs. Every failure caused by an exception also carries a traceback in the TaskResult
`logs`, built from code locations and the same sanitised messages.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger
from pydantic import ValidationError
from pydantic_core import to_json

from perago.errors import (
    GuardrailViolation,
    PreGuardrailViolation,
    PublishFenceError,
    StaleAttemptError,
    TaskExecutionError,
    TaskInputError,
    TaskTerminalError,
)

TaskResultStatus = Literal["COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR"]
FAILURE_STATUSES = frozenset({"FAILED", "FAILED_WITH_TERMINAL_ERROR"})

# perago's own errors are written as sentences for Conductor's UI: sent as they are.
_PERAGO_SENTENCE_ERRORS = (TaskInputError, GuardrailViolation, PublishFenceError, StaleAttemptError)


@dataclass(frozen=True, slots=True)
class RuntimeTaskResult:
    """COMPLETED with `output`, or a failure status with `reason_for_incompletion`.

    `failure_log` is the sanitised traceback of the exception behind a failure; it goes
    to the TaskResult `logs`, never into the reason.
    """

    status: TaskResultStatus
    output: dict[str, Any] | None = None
    reason_for_incompletion: str | None = None
    failure_log: str | None = None

    def __post_init__(self) -> None:
        if self.status == "COMPLETED":
            if self.output is None or self.reason_for_incompletion is not None:
                raise ValueError("COMPLETED task results need output and no reason_for_incompletion")
        elif self.status in FAILURE_STATUSES:
            if self.reason_for_incompletion is None or self.output is not None:
                raise ValueError(f"{self.status} task results need reason_for_incompletion and no output")
        else:
            raise ValueError(f"unsupported task result status {self.status!r}")


def completed(output: dict[str, Any]) -> RuntimeTaskResult:
    return RuntimeTaskResult("COMPLETED", output)


def failed(
    reason: str,
    *,
    max_length: int,
    terminal: bool = False,
    failure_log: str | None = None,
    task_id: str | None = None,
) -> RuntimeTaskResult:
    """A failure with `reason` cut to `max_length` characters (logged when cut)."""
    return RuntimeTaskResult(
        status="FAILED_WITH_TERMINAL_ERROR" if terminal else "FAILED",
        reason_for_incompletion=truncate_reason(reason, max_length, task_id=task_id),
        failure_log=failure_log,
    )


def result_for_exception(exc: BaseException, *, max_length: int, task_id: str | None = None) -> RuntimeTaskResult:
    """Classify `exc` into a failure result with a sanitised reason and traceback."""
    terminal = isinstance(exc, (TaskTerminalError, PreGuardrailViolation))
    return failed(
        failure_reason(exc),
        max_length=max_length,
        terminal=terminal,
        failure_log=safe_traceback(exc),
        task_id=task_id,
    )


def failure_reason(exc: BaseException) -> str:
    """The reason text for `exc`, before truncation (see the module docstring)."""
    if isinstance(exc, TaskExecutionError):
        return exc.reason
    if isinstance(exc, _PERAGO_SENTENCE_ERRORS):
        return str(exc) or type(exc).__name__
    return _typed_message(exc)


def truncate_reason(reason: str, max_length: int, *, task_id: str | None = None) -> str:
    """First `max_length` characters of `reason`; a warning names the lengths, never the text."""
    if max_length < 1:
        raise ValueError("failure reason max length must be at least 1")
    if len(reason) <= max_length:
        return reason
    logger.warning(
        "truncated task failure reason",
        task_id=task_id,
        original_length=len(reason),
        max_length=max_length,
    )
    return reason[:max_length]


def safe_traceback(exc: BaseException) -> str:
    """A traceback with code locations and sanitised messages only (chained causes included)."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    parts: list[str] = []
    for index, (item, _) in enumerate(reversed(chain)):
        if index:
            parts.append(f"\n{chain[len(chain) - index][1]}\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(_typed_message(item) + "\n")
    return "".join(parts)


def _typed_message(exc: BaseException) -> str:
    name = type(exc).__name__
    text = validation_error_text(exc) if isinstance(exc, ValidationError) else str(exc)
    return f"{name}: {text}" if text else name


def validation_error_text(exc: ValidationError) -> str:
    """Pydantic's message layout (count, title, location, message, type) without input values."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    count = len(errors)
    lines = [f"{count} validation error{'s' if count != 1 else ''} for {exc.title}"]
    for error in errors:
        location = ".".join(str(part) for part in error["loc"])
        if location:
            lines.append(location)
        lines.append(f"  {error['msg']} [type={error['type']}]")
    return "\n".join(lines)


def task_result_json(
    result: RuntimeTaskResult,
    *,
    task_id: str,
    workflow_instance_id: str,
    worker_id: str,
) -> bytes:
    """The Conductor TaskResult body for `result` (runtime.md §5.6), as compact UTF-8 JSON."""
    body: dict[str, Any] = {
        "workflowInstanceId": workflow_instance_id,
        "taskId": task_id,
        "workerId": worker_id,
        "status": result.status,
    }
    if result.output is not None:
        body["outputData"] = result.output
    if result.reason_for_incompletion is not None:
        body["reasonForIncompletion"] = result.reason_for_incompletion
    if result.failure_log is not None:
        body["logs"] = [{"log": result.failure_log, "taskId": task_id, "createdTime": int(time.time() * 1000)}]
    body["extendLease"] = False
    return to_json(body)


__all__ = [
    "RuntimeTaskResult",
    "completed",
    "failed",
    "failure_reason",
    "result_for_exception",
    "safe_traceback",
    "task_result_json",
    "truncate_reason",
    "validation_error_text",
]
