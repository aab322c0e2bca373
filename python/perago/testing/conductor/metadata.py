"""Task and workflow definitions: defaults, validation, storage (spec §2.9, §2.10, §3.1, §3.2).

Definitions are normalised on the way in — unknown JSON fields dropped, defaults filled,
as Jackson and the Java models do — so everything downstream reads plain dicts with every
field present. Validation messages follow the OSS constraint annotations.
"""

from __future__ import annotations

import copy
from typing import Any

from perago.testing.conductor.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ValidationFailed,
    json_parse_error,
)

RETRY_LOGICS = ("FIXED", "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF")
TASK_TIMEOUT_POLICIES = ("RETRY", "TIME_OUT_WF", "ALERT_ONLY")
WORKFLOW_TIMEOUT_POLICIES = ("TIME_OUT_WF", "ALERT_ONLY")

# Field name -> (default, kind). `None` defaults are omitted from JSON (NON_NULL).
_TASKDEF_FIELDS: dict[str, tuple[Any, str]] = {
    "name": (None, "str"),
    "description": (None, "str"),
    "retryCount": (3, "int"),
    "retryLogic": ("FIXED", "str"),
    "retryDelaySeconds": (60, "int"),
    "backoffScaleFactor": (1, "int"),
    "maxRetryDelaySeconds": (0, "int"),
    "backoffJitterMs": (0, "int"),
    "timeoutSeconds": (0, "int"),
    "timeoutPolicy": ("TIME_OUT_WF", "str"),
    "responseTimeoutSeconds": (3600, "int"),
    "pollTimeoutSeconds": (None, "int"),
    "totalTimeoutSeconds": (0, "int"),
    "concurrentExecLimit": (None, "int"),
    "rateLimitPerFrequency": (0, "int"),
    "rateLimitFrequencyInSeconds": (1, "int"),
    "inputKeys": ([], "list"),
    "outputKeys": ([], "list"),
    "inputTemplate": ({}, "dict"),
    "ownerEmail": (None, "str"),
    "isolationGroupId": (None, "str"),
    "executionNameSpace": (None, "str"),
    "baseType": (None, "str"),
    "taskStatusListenerEnabled": (True, "bool"),
    "enforceSchema": (False, "bool"),
    "inputSchema": (None, "dict"),
    "outputSchema": (None, "dict"),
    "createTime": (None, "int"),
    "updateTime": (None, "int"),
    "createdBy": (None, "str"),
    "updatedBy": (None, "str"),
    "ownerApp": (None, "str"),
}

_WORKFLOWTASK_FIELDS: dict[str, tuple[Any, str]] = {
    "name": (None, "str"),
    "taskReferenceName": (None, "str"),
    "description": (None, "str"),
    "type": ("SIMPLE", "str"),
    "inputParameters": ({}, "dict"),
    "startDelay": (0, "int"),
    "optional": (False, "bool"),
    "retryCount": (None, "int"),
    "permissive": (False, "bool"),
    "asyncComplete": (False, "bool"),
    "taskDefinition": (None, "dict"),
    "decisionCases": ({}, "dict"),
    "defaultCase": ([], "list"),
    "forkTasks": ([], "list"),
    "joinOn": ([], "list"),
    "defaultExclusiveJoinTask": ([], "list"),
    "loopOver": ([], "list"),
    "onStateChange": ({}, "dict"),
}

_WORKFLOWDEF_FIELDS: dict[str, tuple[Any, str]] = {
    "name": (None, "str"),
    "description": (None, "str"),
    "version": (1, "int"),
    "tasks": ([], "list"),
    "inputParameters": ([], "list"),
    "outputParameters": ({}, "dict"),
    "failureWorkflow": (None, "str"),
    "schemaVersion": (2, "int"),
    "restartable": (True, "bool"),
    "workflowStatusListenerEnabled": (False, "bool"),
    "timeoutPolicy": ("ALERT_ONLY", "str"),
    "timeoutSeconds": (0, "int"),
    "variables": ({}, "dict"),
    "inputTemplate": ({}, "dict"),
    "ownerEmail": (None, "str"),
    "enforceSchema": (True, "bool"),
    "createTime": (None, "int"),
    "updateTime": (None, "int"),
    "createdBy": (None, "str"),
    "updatedBy": (None, "str"),
    "ownerApp": (None, "str"),
}

INT_MAX = 2**31 - 1


def java_text(value: Any) -> str:
    """How Java's String.format renders a boxed value: None is `null`."""
    return "null" if value is None else str(value)


def _coerce(value: Any, kind: str, where: str) -> Any:
    """Jackson-style scalar coercion; anything it would refuse becomes a 500 parse error."""
    if value is None:
        return None
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):
            return str(value).lower() if isinstance(value, bool) else str(value)
    elif kind == "int":
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif isinstance(value, float):
            return int(value)
        elif isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if isinstance(value, int):
            return value != 0
    elif (kind == "dict" and isinstance(value, dict)) or (kind == "list" and isinstance(value, list)):
        return value
    raise json_parse_error(f"Cannot deserialize value of field `{where}` from {type(value).__name__} value {value!r}")


def _normalise(raw: Any, fields: dict[str, tuple[Any, str]], type_name: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise json_parse_error(f"Cannot deserialize value of type `{type_name}` from {_json_kind(raw)}")
    out: dict[str, Any] = {}
    for field, (default, kind) in fields.items():
        value = _coerce(raw.get(field), kind, f"{type_name}.{field}")
        if value is None:
            value = copy.deepcopy(default)
        if value is not None:
            out[field] = value
    return out


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "Array value"
    if isinstance(value, str):
        return "String value"
    if value is None:
        return "null"
    return f"{type(value).__name__} value"


def normalise_taskdef(raw: Any) -> dict[str, Any]:
    return _normalise(raw, _TASKDEF_FIELDS, "TaskDef")


def default_taskdef(name: str) -> dict[str, Any]:
    """The ad-hoc TaskDef OSS substitutes for an unregistered SIMPLE task."""
    return normalise_taskdef({"name": name})


def taskdef_problems(taskdef: dict[str, Any], path: str, owner_email_mandatory: bool) -> list[tuple[str, str, Any]]:
    """Constraint violations of one normalised TaskDef, as (path, message, invalid value)."""
    problems: list[tuple[str, str, Any]] = []
    name = taskdef.get("name")
    if not name:
        problems.append((f"{path}.name", "TaskDef name cannot be null or empty", name))
    for field, minimum, message in (
        ("retryCount", 0, "TaskDef retryCount: {v} must be >= 0"),
        ("responseTimeoutSeconds", 1, "TaskDef responseTimeoutSeconds: {v} must be greater than 0"),
        ("backoffScaleFactor", 1, "TaskDef backoffScaleFactor: {v} must be >= 1"),
        ("maxRetryDelaySeconds", 0, "TaskDef maxRetryDelaySeconds: {v} must be >= 0"),
        ("backoffJitterMs", 0, "TaskDef backoffJitterMs: {v} must be >= 0"),
        ("totalTimeoutSeconds", 0, "TaskDef totalTimeoutSeconds: {v} must be >= 0"),
        ("pollTimeoutSeconds", 0, "TaskDef pollTimeoutSeconds: {v} must be >= 0"),
        ("rateLimitPerFrequency", 0, "TaskDef rateLimitPerFrequency: {v} must be >= 0"),
    ):
        value = taskdef.get(field)
        if value is not None and value < minimum:
            problems.append((f"{path}.{field}", message.format(v=value), value))
    if taskdef.get("retryLogic") not in RETRY_LOGICS:
        problems.append(
            (f"{path}.retryLogic", f"TaskDef retryLogic must be one of {list(RETRY_LOGICS)}", taskdef.get("retryLogic"))
        )
    if taskdef.get("timeoutPolicy") not in TASK_TIMEOUT_POLICIES:
        problems.append(
            (
                f"{path}.timeoutPolicy",
                f"TaskDef timeoutPolicy must be one of {list(TASK_TIMEOUT_POLICIES)}",
                taskdef.get("timeoutPolicy"),
            )
        )
    timeout = taskdef["timeoutSeconds"]
    if timeout > 0:
        if taskdef["responseTimeoutSeconds"] > timeout:
            problems.append(
                (
                    path,
                    f"TaskDef: {name} responseTimeoutSeconds: {taskdef['responseTimeoutSeconds']} "
                    f"must be less than timeoutSeconds: {timeout}",
                    None,
                )
            )
        total = taskdef["totalTimeoutSeconds"]
        if total > 0 and timeout > total:
            problems.append(
                (
                    path,
                    f"TaskDef: {name} timeoutSeconds: {timeout} must be less than or equal to totalTimeoutSeconds: {total}",
                    None,
                )
            )
    if owner_email_mandatory and not taskdef.get("ownerEmail"):
        problems.append((f"{path}.ownerEmail", "ownerEmail cannot be empty", None))
    return problems


def normalise_workflowdef(raw: Any) -> dict[str, Any]:
    definition = _normalise(raw, _WORKFLOWDEF_FIELDS, "WorkflowDef")
    definition["tasks"] = [_normalise_workflow_task(task) for task in definition["tasks"]]
    return definition


def _normalise_workflow_task(raw: Any) -> dict[str, Any]:
    task = _normalise(raw, _WORKFLOWTASK_FIELDS, "WorkflowTask")
    if task.get("taskDefinition") is not None:
        task["taskDefinition"] = normalise_taskdef(task["taskDefinition"])
    return task


def workflowdef_problems(definition: dict[str, Any], path: str) -> list[tuple[str, str, Any]]:
    problems: list[tuple[str, str, Any]] = []
    name = definition.get("name")
    if not name:
        problems.append((f"{path}.name", "WorkflowDef name cannot be null or empty", None))
    tasks = definition["tasks"]
    if not tasks:
        problems.append((f"{path}.tasks", "WorkflowTask list cannot be empty", None))
    if definition["schemaVersion"] != 2:
        problems.append((f"{path}.schemaVersion", "workflowDef schemaVersion: 2 is only supported", definition["schemaVersion"]))
    if definition["timeoutPolicy"] not in WORKFLOW_TIMEOUT_POLICIES:
        problems.append((f"{path}.timeoutPolicy", f"timeoutPolicy must be one of {list(WORKFLOW_TIMEOUT_POLICIES)}", None))
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        where = f"{path}.tasks[{index}]"
        if not task.get("name"):
            problems.append((f"{where}.name", "WorkflowTask name cannot be empty or null", None))
        ref = task.get("taskReferenceName")
        if not ref:
            problems.append((f"{where}.taskReferenceName", "WorkflowTask taskReferenceName name cannot be empty or null", None))
        elif ref in seen:
            problems.append(
                (path, f"taskReferenceName: {ref} should be unique across tasks for a given workflowDefinition: {name}", None)
            )
        else:
            seen.add(ref)
        if task.get("taskDefinition") is not None:
            problems.extend(taskdef_problems(task["taskDefinition"], f"{where}.taskDefinition", False))
    return problems


def require_simple_tasks(definition: dict[str, Any]) -> None:
    """The emulator runs only SIMPLE tasks; refuse others loudly rather than mis-run them."""
    for task in definition["tasks"]:
        if task["type"] != "SIMPLE":
            raise BadRequest(
                f"the perago Conductor emulator runs only SIMPLE tasks; task {task.get('taskReferenceName')!r} "
                f"of workflow {definition.get('name')!r} has type {task['type']!r}"
            )


class MetadataStore:
    """Registered task and workflow definitions.

    `generation` changes on every write so cached execution plans built from the old
    definitions are not reused.
    """

    def __init__(self, owner_email_mandatory: bool = False) -> None:
        self.taskdefs: dict[str, dict[str, Any]] = {}
        self.workflowdefs: dict[str, dict[int, dict[str, Any]]] = {}
        self.generation = 0
        self.owner_email_mandatory = owner_email_mandatory

    # -- task definitions ------------------------------------------------
    def register_taskdefs(self, raw: Any, now_ms: int) -> None:
        if not isinstance(raw, list):
            raise json_parse_error(
                "Cannot deserialize value of type `java.util.ArrayList<TaskDef>` from Object value (token `JsonToken.START_OBJECT`)"
            )
        if not raw:
            raise ValidationFailed([("registerTaskDef.taskDefinitions", "TaskDefList cannot be empty or null", None)])
        taskdefs = [normalise_taskdef(item) for item in raw]
        problems: list[tuple[str, str, Any]] = []
        for index, taskdef in enumerate(taskdefs):
            problems.extend(taskdef_problems(taskdef, f"registerTaskDef.taskDefinitions[{index}]", self.owner_email_mandatory))
        if problems:
            raise ValidationFailed(problems)
        for taskdef in taskdefs:
            previous = self.taskdefs.get(taskdef["name"])
            taskdef["createTime"] = previous.get("createTime", now_ms) if previous else now_ms
            taskdef["updateTime"] = now_ms
            self.taskdefs[taskdef["name"]] = taskdef
        self.generation += 1

    def update_taskdef(self, raw: Any, now_ms: int) -> None:
        taskdef = normalise_taskdef(raw)
        problems = taskdef_problems(taskdef, "updateTaskDef.taskDefinition", self.owner_email_mandatory)
        if problems:
            raise ValidationFailed(problems)
        previous = self.taskdefs.get(taskdef["name"])
        if previous is None:
            raise NotFound(f"No such task by name {taskdef['name']}")
        taskdef["createTime"] = previous.get("createTime", now_ms)
        taskdef["updateTime"] = now_ms
        self.taskdefs[taskdef["name"]] = taskdef
        self.generation += 1

    def get_taskdef(self, name: str) -> dict[str, Any]:
        taskdef = self.taskdefs.get(name)
        if taskdef is None:
            raise NotFound(f"No such taskType found by name: {name}")
        return taskdef

    def delete_taskdef(self, name: str) -> None:
        if self.taskdefs.pop(name, None) is None:
            raise NotFound(f"Cannot remove the task definition: {name}, no such task definition")
        self.generation += 1

    # -- workflow definitions ---------------------------------------------
    def create_workflowdef(self, raw: Any, overwrite: bool, now_ms: int) -> None:
        definition = self._validated_workflowdef(raw, "create.workflowDef")
        versions = self.workflowdefs.setdefault(definition["name"], {})
        if definition["version"] in versions and not overwrite:
            raise Conflict(f"Workflow with {definition['name']}.{definition['version']} already exists!")
        definition["createTime"] = now_ms
        versions[definition["version"]] = definition
        self.generation += 1

    def upsert_workflowdefs(self, raw: Any, now_ms: int) -> dict[str, Any]:
        if not isinstance(raw, list):
            raise json_parse_error(
                "Cannot deserialize value of type `java.util.ArrayList<WorkflowDef>` from Object value (token `JsonToken.START_OBJECT`)"
            )
        errors: dict[str, str] = {}
        succeeded: list[str] = []
        for item in raw:
            try:
                definition = self._validated_workflowdef(item, "update.workflowDefs")
            except (ValidationFailed, BadRequest) as error:
                name = item.get("name") if isinstance(item, dict) else None
                detail = (
                    "; ".join(message for _, message, _ in error.errors) if isinstance(error, ValidationFailed) else error.message
                )
                errors[str(name)] = detail or "invalid workflow definition"
                continue
            previous = self.workflowdefs.get(definition["name"], {}).get(definition["version"])
            definition["createTime"] = previous.get("createTime", now_ms) if previous else now_ms
            definition["updateTime"] = now_ms
            self.workflowdefs.setdefault(definition["name"], {})[definition["version"]] = definition
            succeeded.append(definition["name"])
        self.generation += 1
        return {"bulkErrorResults": errors, "bulkSuccessfulResults": succeeded}

    def get_workflowdef(self, name: str, version: int | None) -> dict[str, Any]:
        versions = self.workflowdefs.get(name)
        if versions:
            chosen = max(versions) if version is None else version
            if chosen in versions:
                return versions[chosen]
        raise NotFound(f"No such workflow found by name: {name}, version: {java_text(version)}")

    def find_workflowdef(self, name: str, version: int | None) -> dict[str, Any] | None:
        versions = self.workflowdefs.get(name)
        if not versions:
            return None
        return versions.get(max(versions) if version is None else version)

    def all_workflowdefs(self) -> list[dict[str, Any]]:
        return [definition for versions in self.workflowdefs.values() for definition in versions.values()]

    def validated_inline_workflowdef(self, raw: Any) -> dict[str, Any]:
        return self._validated_workflowdef(raw, "startWorkflow.startWorkflowRequest.workflowDef")

    def _validated_workflowdef(self, raw: Any, path: str) -> dict[str, Any]:
        definition = normalise_workflowdef(raw)
        problems = workflowdef_problems(definition, path)
        if problems:
            raise ValidationFailed(problems)
        require_simple_tasks(definition)
        return definition
