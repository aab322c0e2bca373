"""Workflow evaluation: scheduling with input mapping, timeouts, retries, completion
(spec conductor-api.md §4.5–§4.7, §5.4, §6).

`Decider.decide` is OSS's `decide` for a linear list of SIMPLE tasks. It runs inside every
start, update, resume and due timer of the workflow, and only looks at that workflow's
tasks from its first unfinished one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perago.testing.conductor.expressions import TASK_ID_PLACEHOLDER, evaluate, walk
from perago.testing.conductor.metadata import INT_MAX
from perago.testing.conductor.queues import queue_name
from perago.testing.conductor.records import (
    RETRIABLE_TASK_STATUSES,
    SUCCESSFUL_TASK_STATUSES,
    PlanStep,
    TaskRecord,
    WorkflowRecord,
)
from perago.testing.conductor.state import EngineState, new_id


class _WorkflowEnded(Exception):
    """Raised inside `decide` when a task outcome ends the workflow (OSS's TerminateWorkflowException)."""

    def __init__(self, status: str, reason: str, task: TaskRecord | None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.task = task


class Decider(EngineState):
    """Scheduling and evaluation of workflows."""

    def _resolver(self, workflow: WorkflowRecord, new_task_id: str | None) -> Callable[[str, list[str | int]], Any]:
        def resolve(root: str, path: list[str | int]) -> Any:
            if root == "workflow":
                if path and path[0] == "input":  # the common case, without building the whole document
                    return walk(workflow.input, path[1:])
                return walk(workflow.as_document(), path)
            if root == TASK_ID_PLACEHOLDER and not path:
                return new_task_id
            task = workflow.latest_by_ref.get(root)
            if task is None:
                return None
            if path and path[0] == "output":
                return walk(task.output_data, path[1:])
            return walk(task.as_document(), path)

        return resolve

    def _choose_domain(self, workflow: WorkflowRecord, task_type: str) -> str | None:
        mapping = workflow.task_to_domain
        if not mapping:
            return None
        listed = mapping.get(task_type) or mapping.get("*")
        if not listed:
            return None
        domains = [domain.strip() for domain in listed.split(",")]
        horizon = self.now() - self.settings.active_worker_window_seconds * 1000
        for domain in domains:
            if domain.upper() == "NO_DOMAIN":
                continue
            polled = self.poll_data.get((task_type, domain))
            if polled is not None and polled["lastPollTime"] >= horizon:
                return domain
        last = domains[-1]
        return None if last.upper() == "NO_DOMAIN" else last

    def _schedule(
        self,
        workflow: WorkflowRecord,
        step: PlanStep,
        previous: TaskRecord | None = None,
        delay_seconds: int | None = None,
        jitter_ms: int = 0,
    ) -> TaskRecord:
        now = self.now()
        task = TaskRecord(new_id(), workflow, step, now)
        delay = step.start_delay if delay_seconds is None else delay_seconds
        task.start_delay = task.callback_after = delay
        if previous is not None:
            task.retry_count = previous.retry_count + 1
            task.retried_task_id = previous.task_id
            task.reason = previous.reason
            task.first_scheduled_time = previous.first_scheduled_time
            task.first_start_time = previous.first_start_time
        input_data = evaluate(step.input_template, self._resolver(workflow, task.task_id))
        for key, default in step.template_defaults.items():
            if input_data.get(key) is None:
                input_data[key] = default
        task.input_data = input_data
        task.domain = self._choose_domain(workflow, step.name)
        task.queue_name = queue_name(step.name, task.domain)
        task.seq = len(workflow.tasks) + 1
        workflow.tasks.append(task)
        workflow.latest_by_ref[step.ref] = task
        self.tasks[task.task_id] = task
        limit = step.taskdef.get("concurrentExecLimit")
        if limit is not None and limit > 0:
            self.unfinished[step.name][task.task_id] = None
        self._push(task, delay * 1000 + jitter_ms)
        taskdef = step.taskdef
        poll_timeout = taskdef.get("pollTimeoutSeconds")
        if poll_timeout:  # fires at scheduledTime + startDelay + (pollTimeout + callbackAfter), both delays = `delay`
            self._arm(now + (2 * delay + poll_timeout) * 1000, workflow.workflow_id)
        total = taskdef["totalTimeoutSeconds"]
        if total > 0 and self.behaviour.retry_delay_cap_and_jitter:
            self._arm(task.first_scheduled_time + total * 1000, workflow.workflow_id)
        return task

    def decide(self, workflow: WorkflowRecord) -> None:
        """Evaluate one RUNNING workflow: timeouts, retries, next task, completion (§4.6, §4.7, §6.1)."""
        if workflow.status != "RUNNING":
            return
        try:
            self._check_workflow_timeout(workflow)
            progressed = True
            while progressed and workflow.status == "RUNNING":
                progressed = False
                tasks = workflow.tasks
                first = workflow.first_pending
                while first < len(tasks) and (tasks[first].retried or tasks[first].executed):
                    first += 1
                workflow.first_pending = first
                for task in tasks[first:]:
                    if task.retried or task.executed:
                        continue
                    if not task.terminal:
                        self._check_task_timeouts(workflow, task)
                    if not task.terminal:
                        continue
                    if task.status not in SUCCESSFUL_TASK_STATUSES:
                        self._retry_or_end(workflow, task)
                        progressed = True
                    if task.status in SUCCESSFUL_TASK_STATUSES and not task.executed:
                        task.executed = True
                        progressed = True
                        self._advance(workflow, task)
        except _WorkflowEnded as ended:
            self._end_workflow(workflow, ended.status, ended.reason, ended.task)

    def _advance(self, workflow: WorkflowRecord, task: TaskRecord) -> None:
        steps = workflow.plan.steps
        following = task.step.index + 1
        if following < len(steps):
            self._schedule(workflow, steps[following])
        else:
            self._end_workflow(workflow, "COMPLETED", None, None)

    def _check_workflow_timeout(self, workflow: WorkflowRecord) -> None:
        definition = workflow.plan.definition
        timeout = definition["timeoutSeconds"]
        if timeout <= 0 or definition["timeoutPolicy"] != "TIME_OUT_WF":
            return
        elapsed = self.now() - (workflow.last_retried_time or workflow.create_time)
        if elapsed >= timeout * 1000:
            raise _WorkflowEnded(
                "TIMED_OUT",
                f"Workflow timed out after {elapsed // 1000} seconds. Timeout configured as {timeout} seconds. "
                "Timeout policy configured to TIME_OUT_WF",
                None,
            )

    def _check_task_timeouts(self, workflow: WorkflowRecord, task: TaskRecord) -> None:
        now = self.now()
        taskdef = task.step.taskdef
        total = taskdef["totalTimeoutSeconds"]
        if total > 0 and self.behaviour.retry_delay_cap_and_jitter and now - task.first_scheduled_time >= total * 1000:
            reason = f"Task {task.step.name}/{task.task_id} exceeded total timeout of {total} seconds"
            self._time_out_by_policy(task, taskdef, reason)
            if task.terminal:
                return
        timeout = taskdef["timeoutSeconds"]
        if timeout > 0 and task.start_time > 0:
            elapsed = now - (task.start_time + task.start_delay * 1000)
            if elapsed >= timeout * 1000:
                reason = (
                    f"Task timed out after {elapsed // 1000} seconds. Timeout configured as {timeout} seconds. "
                    f"Timeout policy configured to {taskdef['timeoutPolicy']}"
                )
                self._time_out_by_policy(task, taskdef, reason)
                if task.terminal:
                    return
        poll_timeout = taskdef.get("pollTimeoutSeconds")
        if poll_timeout and task.status == "SCHEDULED":
            elapsed = now - (task.scheduled_time + task.start_delay * 1000)
            if elapsed >= (poll_timeout + task.callback_after) * 1000:
                reason = (
                    f"Task poll timed out after {elapsed // 1000} seconds. Poll timeout configured as {poll_timeout} seconds. "
                    f"Timeout policy configured to {taskdef['timeoutPolicy']}"
                )
                self._time_out_by_policy(task, taskdef, reason)
                if task.terminal:
                    return
        if (
            task.status == "IN_PROGRESS"
            and task.response_timeout != 0
            and now - task.update_time >= (task.response_timeout + task.callback_after) * 1000
        ):
            self._time_out(
                task,
                f"responseTimeout: {task.response_timeout} exceeded for the taskId: {task.task_id} with Task Definition: {task.step.name}",
            )

    def _time_out(self, task: TaskRecord, reason: str) -> None:
        self._set_status(task, "TIMED_OUT")
        task.reason = reason
        task.end_time = self.now()
        self._unqueue(task)

    def _time_out_by_policy(self, task: TaskRecord, taskdef: dict[str, Any], reason: str) -> None:
        policy = taskdef["timeoutPolicy"]
        if policy == "ALERT_ONLY":
            return
        self._time_out(task, reason)
        if policy == "TIME_OUT_WF":
            raise _WorkflowEnded("TIMED_OUT", reason, task)

    def _retry_or_end(self, workflow: WorkflowRecord, task: TaskRecord) -> None:
        step = task.step
        taskdef = step.taskdef
        expected = step.retry_count_override if step.retry_count_override is not None else taskdef["retryCount"]
        total = taskdef["totalTimeoutSeconds"]
        budget_spent = (
            total > 0 and self.behaviour.retry_delay_cap_and_jitter and self.now() - task.first_scheduled_time >= total * 1000
        )
        if task.status in RETRIABLE_TASK_STATUSES and task.retry_count < expected and not budget_spent:
            delay = self._retry_delay(taskdef, task.retry_count)
            jitter = taskdef["backoffJitterMs"] if self.behaviour.retry_delay_cap_and_jitter else 0
            task.retried = True
            self._schedule(
                workflow, step, previous=task, delay_seconds=delay, jitter_ms=self._random.randint(0, jitter) if jitter > 0 else 0
            )
            return
        if step.optional:
            task.status = "COMPLETED_WITH_ERRORS"
            return
        status = "TIMED_OUT" if task.status == "TIMED_OUT" else "TERMINATED" if task.status == "CANCELED" else "FAILED"
        raise _WorkflowEnded(status, f"Task {task.task_id} failed with status: {status} and reason: '{task.reason}'", task)

    def _retry_delay(self, taskdef: dict[str, Any], attempt: int) -> int:
        base = taskdef["retryDelaySeconds"]
        logic = taskdef["retryLogic"]
        if logic == "LINEAR_BACKOFF":
            delay = base * taskdef["backoffScaleFactor"] * (attempt + 1)
        elif logic == "EXPONENTIAL_BACKOFF":
            delay = base * (2**attempt)
        else:
            delay = base
        delay = min(delay, INT_MAX)
        cap = taskdef["maxRetryDelaySeconds"]
        if cap > 0 and self.behaviour.retry_delay_cap_and_jitter:
            delay = min(delay, cap)
        return delay

    def _end_workflow(self, workflow: WorkflowRecord, status: str, reason: str | None, failed: TaskRecord | None) -> None:
        now = self.now()
        if status != "COMPLETED":
            for task in workflow.tasks:
                if not task.terminal:
                    self._set_status(task, "CANCELED")
                    task.end_time = now
                    self._unqueue(task)
        if failed is not None:
            workflow.failed_task_id = failed.task_id
            if failed.step.ref not in workflow.failed_refs:
                workflow.failed_refs.append(failed.step.ref)
            if failed.step.name not in workflow.failed_names:
                workflow.failed_names.append(failed.step.name)
        workflow.status = status
        workflow.reason = reason
        workflow.end_time = now
        workflow.update_time = now
        workflow.output = self._workflow_output(workflow)

    def _workflow_output(self, workflow: WorkflowRecord) -> dict[str, Any]:
        template = workflow.plan.output_template
        if template is not None:
            return evaluate(template, self._resolver(workflow, None))
        if not workflow.tasks:
            return {}
        return dict(workflow.tasks[-1].output_data)
