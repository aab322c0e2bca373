"""Reading a TaskResult body the way the OSS server does (spec §3.4, §1.1, §2.3, §2.4).

Jackson's failures (wrong JSON type, unknown enum value) are 500s; bean validation of
the ids is a 400 on `POST /api/tasks` but a 500 on `update-v2`, where the controller's
`@Valid` fires before the service's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perago.testing.conductor.errors import (
    ServerError,
    ValidationFailed,
    json_parse_error,
)

RESULT_STATUSES = ("IN_PROGRESS", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "COMPLETED")
RESULT_STATUSES_WITH_CANCELED = (*RESULT_STATUSES, "CANCELED")
REASON_LIMIT = 500


@dataclass
class TaskResult:
    workflow_id: str
    task_id: str
    status: str | None
    output_data: dict[str, Any]
    reason: str | None
    callback_after: int
    worker_id: str | None
    extend_lease: bool
    logs: list[dict[str, Any]] = field(default_factory=list)


def _string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise json_parse_error(
        f"Cannot deserialize value of type `java.lang.String` from {type(value).__name__} value (field `{key}`)"
    )


def _integer(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool):
        raise json_parse_error(f"Cannot coerce boolean to `long` value (field `{key}`)")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise json_parse_error(f"Cannot deserialize value of type `long` from {value!r} (field `{key}`)")


def parse_task_result(body: Any, canceled_accepted: bool, controller_validation: bool) -> TaskResult:
    """Parse and validate; raises the ConductorError the server would answer with."""
    if not isinstance(body, dict):
        raise json_parse_error(
            "Cannot deserialize value of type `com.netflix.conductor.common.metadata.tasks.TaskResult` "
            f"from {'Array' if isinstance(body, list) else type(body).__name__} value"
        )
    allowed = RESULT_STATUSES_WITH_CANCELED if canceled_accepted else RESULT_STATUSES
    status = _string(body, "status")
    if status is not None and status not in allowed:
        raise json_parse_error(
            "Cannot deserialize value of type `com.netflix.conductor.common.metadata.tasks.TaskResult$Status` "
            f'from String "{status}": not one of the values accepted for Enum class: [{", ".join(allowed)}]'
        )
    output = body.get("outputData")
    if output is not None and not isinstance(output, dict):
        raise json_parse_error(
            "Cannot deserialize value of type `java.util.LinkedHashMap<java.lang.String,java.lang.Object>` (field `outputData`)"
        )
    logs = body.get("logs")
    if logs is not None and not isinstance(logs, list):
        raise json_parse_error("Cannot deserialize value of type `java.util.ArrayList<TaskExecLog>` (field `logs`)")
    extend = body.get("extendLease")
    if extend is not None and not isinstance(extend, bool):
        raise json_parse_error("Cannot deserialize value of type `boolean` (field `extendLease`)")
    workflow_id = _string(body, "workflowInstanceId")
    task_id = _string(body, "taskId")
    problems = []
    if not task_id:
        problems.append(("updateTask.taskResult.taskId", "Task ID cannot be null or empty", None))
    if not workflow_id:
        problems.append(("updateTask.taskResult.workflowInstanceId", "Workflow Id cannot be null or empty", None))
    if problems:
        if controller_validation:
            fields = "; ".join(
                f"[Field error in object 'taskResult' on field '{path.rsplit('.', 1)[1]}': rejected value [null]; default message [{message}]]"
                for path, message, _ in problems
            )
            raise ServerError(
                "Validation failed for argument [0] in public org.springframework.http.ResponseEntity<com.netflix.conductor.common"
                ".metadata.tasks.Task> com.netflix.conductor.rest.controllers.TaskResource.updateTaskV2(com.netflix.conductor"
                f".common.metadata.tasks.TaskResult) with {len(problems)} errors: {fields}"
            )
        raise ValidationFailed(problems)
    reason = _string(body, "reasonForIncompletion")
    if reason is not None and len(reason) > REASON_LIMIT:
        reason = reason[:REASON_LIMIT]
    return TaskResult(
        workflow_id=workflow_id,  # type: ignore[arg-type]
        task_id=task_id,  # type: ignore[arg-type]
        status=status,
        output_data=output if output is not None else {},
        reason=reason,
        callback_after=_integer(body, "callbackAfterSeconds"),
        worker_id=_string(body, "workerId"),
        extend_lease=bool(extend),
        logs=[entry for entry in (logs or []) if isinstance(entry, dict)],
    )
