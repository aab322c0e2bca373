"""In-memory tasks, workflows and execution plans, and their JSON (spec §3.5, §3.6).

A `WorkflowPlan` is a workflow definition with its task definitions captured (as OSS does
at start) and its mapping templates compiled; workflows started while no definition
changed share one plan. The static part of each task's JSON (`workflowTask`,
`taskDefinition`) is serialised once per plan step, so rendering a polled task only
encodes the fields that change.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring as _quote
from typing import Any

from perago.testing.conductor.expressions import compile_template

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """Compact JSON, as the server writes it."""
    return _dumps(value)


TERMINAL_TASK_STATUSES = frozenset(
    {"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED", "SKIPPED"}
)
SUCCESSFUL_TASK_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_ERRORS", "SKIPPED"})
RETRIABLE_TASK_STATUSES = frozenset({"FAILED", "TIMED_OUT"})
TERMINAL_WORKFLOW_STATUSES = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})


class PlanStep:
    """One WorkflowTask of a plan with its captured TaskDef."""

    __slots__ = (
        "index",
        "name",
        "ref",
        "workflow_task",
        "taskdef",
        "input_template",
        "template_defaults",
        "quoted_name",
        "quoted_ref",
        "quoted_workflow",
        "rate_limit_json",
        "workflow_task_json",
        "taskdef_json",
        "start_delay",
        "retry_count_override",
        "optional",
    )

    def __init__(self, index: int, workflow_task: dict[str, Any], taskdef: dict[str, Any], workflow_name: str) -> None:
        self.index = index
        self.name: str = workflow_task["name"]
        self.ref: str = workflow_task["taskReferenceName"]
        self.workflow_task = workflow_task
        self.taskdef = taskdef
        parameters = dict(workflow_task["inputParameters"])
        for key, value in taskdef.get("inputTemplate", {}).items():
            parameters.setdefault(key, value)
        self.input_template = compile_template(parameters)
        self.template_defaults = dict(taskdef.get("inputTemplate", {}))
        # The Task JSON fields fixed by the plan step, rendered once (see TaskRecord.to_json).
        self.quoted_name = _quote(self.name)
        self.quoted_ref = _quote(self.ref)
        self.quoted_workflow = _quote(workflow_name)
        self.rate_limit_json = (
            f',"rateLimitPerFrequency":{taskdef["rateLimitPerFrequency"]}'
            f',"rateLimitFrequencyInSeconds":{taskdef["rateLimitFrequencyInSeconds"]}'
        )
        self.workflow_task_json = dumps(workflow_task)
        self.taskdef_json = dumps(taskdef)
        self.start_delay: int = workflow_task["startDelay"]
        self.retry_count_override: int | None = workflow_task.get("retryCount")
        self.optional: bool = workflow_task["optional"]


class WorkflowPlan:
    """A workflow definition ready to run."""

    __slots__ = ("definition", "name", "version", "steps", "steps_by_ref", "output_template", "definition_json")

    def __init__(self, definition: dict[str, Any], taskdef_for: Any) -> None:
        tasks = []
        steps = []
        for index, workflow_task in enumerate(definition["tasks"]):
            captured = dict(workflow_task)
            taskdef = captured.get("taskDefinition") or taskdef_for(captured["name"])
            captured["taskDefinition"] = taskdef
            tasks.append(captured)
            steps.append(PlanStep(index, captured, taskdef, definition["name"]))
        self.definition = dict(definition, tasks=tasks)
        self.name: str = definition["name"]
        self.version: int = definition["version"]
        self.steps = steps
        self.steps_by_ref = {step.ref: step for step in steps}
        self.output_template = compile_template(definition["outputParameters"]) if definition["outputParameters"] else None
        self.definition_json = dumps(self.definition)


class TaskRecord:
    """One attempt of one WorkflowTask (a Conductor Task)."""

    __slots__ = (
        "task_id",
        "workflow",
        "step",
        "status",
        "input_data",
        "output_data",
        "retry_count",
        "seq",
        "poll_count",
        "scheduled_time",
        "start_time",
        "end_time",
        "update_time",
        "start_delay",
        "callback_after",
        "response_timeout",
        "retried",
        "executed",
        "retried_task_id",
        "reason",
        "worker_id",
        "domain",
        "queue_name",
        "first_start_time",
        "first_scheduled_time",
    )

    def __init__(self, task_id: str, workflow: WorkflowRecord, step: PlanStep, now_ms: int) -> None:
        self.task_id = task_id
        self.workflow = workflow
        self.step = step
        self.status = "SCHEDULED"
        self.input_data: dict[str, Any] = {}
        self.output_data: dict[str, Any] = {}
        self.retry_count = 0
        self.seq = 0
        self.poll_count = 0
        self.scheduled_time = now_ms
        self.start_time = 0
        self.end_time = 0
        self.update_time = now_ms
        self.start_delay = 0
        self.callback_after = 0
        self.response_timeout: int = step.taskdef["responseTimeoutSeconds"]
        self.retried = False
        self.executed = False
        self.retried_task_id: str | None = None
        self.reason: str | None = None
        self.worker_id: str | None = None
        self.domain: str | None = None
        self.queue_name = step.name
        self.first_start_time = 0
        self.first_scheduled_time = now_ms

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_TASK_STATUSES

    def as_document(self) -> dict[str, Any]:
        """The fields `${ref.<field>}` expressions can read."""
        return {
            "input": self.input_data,
            "output": self.output_data,
            "status": self.status,
            "taskId": self.task_id,
            "referenceTaskName": self.step.ref,
            "taskType": self.step.name,
            "retryCount": self.retry_count,
            "pollCount": self.poll_count,
            "workerId": self.worker_id,
            "reasonForIncompletion": self.reason,
            "scheduledTime": self.scheduled_time,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "updateTime": self.update_time,
            "callbackAfterSeconds": self.callback_after,
            "domain": self.domain,
            "seq": self.seq,
        }

    def to_json(self, now_ms: int) -> str:
        """The Task JSON (spec §3.5), fields in the order Jackson writes them; the parts fixed
        by the plan step come pre-rendered, so only the changing fields are encoded here."""
        workflow = self.workflow
        step = self.step
        correlation = "" if workflow.correlation_id is None else f',"correlationId":{_quote(workflow.correlation_id)}'
        retried_from = "" if self.retried_task_id is None else f',"retriedTaskId":"{self.retried_task_id}"'
        reason = "" if self.reason is None else f',"reasonForIncompletion":{_quote(self.reason)}'
        worker = "" if self.worker_id is None else f',"workerId":{_quote(self.worker_id)}'
        domain = "" if self.domain is None else f',"domain":{_quote(self.domain)}'
        return (
            f'{{"taskType":{step.quoted_name},"status":"{self.status}","inputData":{_dumps(self.input_data)}'
            f',"referenceTaskName":{step.quoted_ref},"retryCount":{self.retry_count},"seq":{self.seq}{correlation}'
            f',"pollCount":{self.poll_count},"taskDefName":{step.quoted_name},"scheduledTime":{self.scheduled_time}'
            f',"startTime":{self.start_time},"endTime":{self.end_time},"updateTime":{self.update_time}'
            f',"startDelayInSeconds":{self.start_delay}{retried_from}'
            f',"retried":{"true" if self.retried else "false"},"executed":{"true" if self.executed else "false"}'
            f',"callbackFromWorker":true,"responseTimeoutSeconds":{self.response_timeout}'
            f',"workflowInstanceId":"{workflow.workflow_id}","workflowType":{step.quoted_workflow}'
            f',"taskId":"{self.task_id}"{reason},"callbackAfterSeconds":{self.callback_after}{worker}'
            f',"outputData":{_dumps(self.output_data)},"workflowTask":{step.workflow_task_json}{domain}'
            f"{step.rate_limit_json}"
            f',"workflowPriority":{workflow.priority},"iteration":0,"loopOverTask":false,"subworkflowChanged":false'
            f',"firstStartTime":{self.first_start_time},"queueWaitTime":{self._queue_wait_time(now_ms)}'
            f',"taskDefinition":{step.taskdef_json}}}'
        )

    def _queue_wait_time(self, now_ms: int) -> int:
        if self.start_time > 0 and self.scheduled_time > 0:
            if self.update_time > 0 and self.callback_after > 0:
                return max(0, now_ms - (self.update_time + self.callback_after * 1000))
            return self.start_time - self.scheduled_time
        return 0


class WorkflowRecord:
    """One workflow execution."""

    __slots__ = (
        "workflow_id",
        "plan",
        "status",
        "input",
        "output",
        "tasks",
        "first_pending",
        "latest_by_ref",
        "correlation_id",
        "reason",
        "failed_task_id",
        "failed_refs",
        "failed_names",
        "priority",
        "task_to_domain",
        "variables",
        "create_time",
        "end_time",
        "update_time",
        "last_retried_time",
        "created_by",
    )

    def __init__(self, workflow_id: str, plan: WorkflowPlan, workflow_input: dict[str, Any], now_ms: int) -> None:
        self.workflow_id = workflow_id
        self.plan = plan
        self.status = "RUNNING"
        self.input = workflow_input
        self.output: dict[str, Any] = {}
        self.tasks: list[TaskRecord] = []
        self.first_pending = 0  # tasks before this index are executed or retried: decide skips them
        self.latest_by_ref: dict[str, TaskRecord] = {}
        self.correlation_id: str | None = None
        self.reason: str | None = None
        self.failed_task_id: str | None = None
        self.failed_refs: list[str] = []
        self.failed_names: list[str] = []
        self.priority = 0
        self.task_to_domain: dict[str, str] = {}
        self.variables: dict[str, Any] = dict(plan.definition.get("variables", {}))
        self.create_time = now_ms
        self.end_time = 0
        self.update_time = now_ms
        self.last_retried_time = 0
        self.created_by: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_WORKFLOW_STATUSES

    def as_document(self) -> dict[str, Any]:
        """The fields `${workflow.<field>}` expressions can read."""
        return {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "workflowId": self.workflow_id,
            "correlationId": self.correlation_id,
            "workflowType": self.plan.name,
            "version": self.plan.version,
            "variables": self.variables,
            "parentWorkflowId": None,
            "reasonForIncompletion": self.reason,
            "createTime": self.create_time,
            "priority": self.priority,
        }

    def to_json(self, now_ms: int, include_tasks: bool = True) -> str:
        body: dict[str, Any] = {
            "workflowId": self.workflow_id,
            "workflowName": self.plan.name,
            "workflowVersion": self.plan.version,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "failedReferenceTaskNames": self.failed_refs,
            "failedTaskNames": self.failed_names,
            "priority": self.priority,
            "taskToDomain": self.task_to_domain,
            "variables": self.variables,
            "createTime": self.create_time,
            "startTime": self.create_time,
            "endTime": self.end_time,
            "updateTime": self.update_time,
            "lastRetriedTime": self.last_retried_time,
            "history": [],
        }
        if self.correlation_id is not None:
            body["correlationId"] = self.correlation_id
        if self.reason is not None:
            body["reasonForIncompletion"] = self.reason
        if self.failed_task_id is not None:
            body["failedTaskId"] = self.failed_task_id
        if self.created_by is not None:
            body["createdBy"] = self.created_by
        tasks = ",".join(task.to_json(now_ms) for task in self.tasks) if include_tasks else ""
        return f'{_dumps(body)[:-1]},"tasks":[{tasks}],"workflowDefinition":{self.plan.definition_json}}}'
