"""The SIMPLE-task state machine and the linear workflow decider (spec §2, §4, §5, §6).

Everything here is synchronous and runs on the server's single event-loop thread, so
each operation — a poll hand-out, an update with its `decide`, a start — is atomic, as
the spec's §9 asks. Per-task work is O(1) or O(log n): tasks and workflows are found by
id, queues are heaps and deques, deadlines sit in one timer heap; `decide` only looks at
the tasks of the one workflow it evaluates.

Timeouts are applied when a deadline passes on the injected clock (checked at every
request and every background tick), i.e. at the deadline plus at most one tick, where a
real server's sweeper would take 1–2 s.
"""

from __future__ import annotations

import heapq
from itertools import islice
from typing import Any

from perago.testing.conductor.decider import Decider
from perago.testing.conductor.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServerError,
    ValidationFailed,
)
from perago.testing.conductor.metadata import default_taskdef
from perago.testing.conductor.queues import queue_name
from perago.testing.conductor.records import TaskRecord, WorkflowPlan, WorkflowRecord
from perago.testing.conductor.state import new_id
from perago.testing.conductor.task_result import TaskResult


class Engine(Decider):
    """Every operation the REST surface calls: polls, updates, workflow control, inspection."""

    # ------------------------------------------------------------ timers
    def process_timers(self) -> None:
        """Re-evaluate every workflow with a deadline that has passed (the sweeper)."""
        timers = self._timers
        if not timers:
            return
        now = self.now()
        if timers[0][0] > now:
            return
        due: list[str] = []
        while timers and timers[0][0] <= now:
            due.append(heapq.heappop(timers)[2])
        for workflow_id in dict.fromkeys(due):
            workflow = self.workflows.get(workflow_id)
            if workflow is not None and workflow.status == "RUNNING":
                self.decide(workflow)

    def wake_due_queues(self) -> None:
        """Tell long-pollers about delayed messages that became visible."""
        now = self.now()
        for name, queue in self.queues.items():
            if len(queue) and queue.has_visible(now):
                self.on_push(name)

    # ------------------------------------------------------------ polls
    def record_poll(self, task_type: str, domain: str | None, worker_id: str | None) -> None:
        self.poll_data[(task_type, domain)] = {
            "queueName": task_type,
            "domain": domain,
            "workerId": worker_id,
            "lastPollTime": self.now(),
        }

    def collect(self, name: str, limit: int) -> list[str]:
        """Pop up to `limit` visible messages of queue `name`."""
        found = self.queues.get(name)
        if found is None:
            self.queue(name)
            return []
        now = self.now()
        ids: list[str] = []
        while len(ids) < limit:
            task_id = found.pop(now)
            if task_id is None:
                break
            ids.append(task_id)
        return ids

    def hand_out(self, task_ids: list[str], worker_id: str | None) -> list[TaskRecord]:
        """Steps 1–4 of §2.2 for messages a poll popped."""
        now = self.now()
        given: list[TaskRecord] = []
        for task_id in task_ids:
            task = self.tasks.get(task_id)
            if task is None or task.terminal:
                continue
            found = self.queues.get(task.queue_name)
            if found is not None:
                found.remove(task_id)  # ack: a re-queue that raced with this poll is consumed too
            taskdef = task.step.taskdef
            limit = taskdef.get("concurrentExecLimit")
            if (limit is not None and limit > 0 and not self._admitted(task, limit)) or self._rate_limited(task, now):
                self._postpone(task)
                continue
            if task.status != "IN_PROGRESS":
                self.in_progress[task.step.name] += 1
            task.status = "IN_PROGRESS"
            if task.start_time == 0:
                task.start_time = now
            if task.first_start_time == 0:
                task.first_start_time = now
            task.callback_after = 0
            task.worker_id = worker_id
            task.poll_count += 1
            task.update_time = now
            workflow_id = task.workflow.workflow_id
            if task.response_timeout > 0:
                self._arm(now + task.response_timeout * 1000, workflow_id)
            timeout = taskdef["timeoutSeconds"]
            if timeout > 0:
                self._arm(task.start_time + (task.start_delay + timeout) * 1000, workflow_id)
            if self.settings.rate_limits and taskdef["rateLimitPerFrequency"] > 0:
                self.hand_outs[task.step.name].append(now)
            given.append(task)
        return given

    def _admitted(self, task: TaskRecord, limit: int) -> bool:
        """Fewer than `limit` IN_PROGRESS, and the task among the `limit` oldest unfinished of its type."""
        name = task.step.name
        if self.in_progress[name] >= limit:
            return False
        return task.task_id in islice(self.unfinished[name], limit)

    def _rate_limited(self, task: TaskRecord, now: int) -> bool:
        taskdef = task.step.taskdef
        per = taskdef["rateLimitPerFrequency"]
        if not self.settings.rate_limits or per <= 0:
            return False
        window = self.hand_outs[task.step.name]
        horizon = now - taskdef["rateLimitFrequencyInSeconds"] * 1000
        while window and window[0] <= horizon:
            window.popleft()
        return len(window) >= per

    def _postpone(self, task: TaskRecord) -> None:
        self._push(task, self.settings.postpone_seconds * 1000)
        self.postponed[task.step.name].append(task.task_id)

    # ------------------------------------------------------------ workflows
    def plan_for(self, definition: dict[str, Any], cache: bool = True) -> WorkflowPlan:
        key = (definition["name"], definition["version"])
        generation = self.metadata.generation
        if cache:
            cached = self._plans.get(key)
            if cached is not None and cached[0] == generation:
                return cached[1]
        plan = WorkflowPlan(definition, self._captured_taskdef)
        if cache:
            self._plans[key] = (generation, plan)
        return plan

    def _captured_taskdef(self, name: str) -> dict[str, Any]:
        return self.metadata.taskdefs.get(name) or default_taskdef(name)

    def start_workflow(
        self,
        plan: WorkflowPlan,
        workflow_input: dict[str, Any],
        correlation_id: str | None = None,
        priority: int = 0,
        task_to_domain: dict[str, str] | None = None,
        created_by: str | None = None,
    ) -> WorkflowRecord:
        now = self.now()
        workflow = WorkflowRecord(new_id(), plan, workflow_input, now)
        workflow.correlation_id = correlation_id
        workflow.priority = priority
        workflow.task_to_domain = dict(task_to_domain or {})
        workflow.created_by = created_by
        self.workflows[workflow.workflow_id] = workflow
        timeout = plan.definition["timeoutSeconds"]
        if timeout > 0:
            self._arm(now + timeout * 1000, workflow.workflow_id)
        self._schedule(workflow, plan.steps[0])
        return workflow

    def get_workflow(self, workflow_id: str) -> WorkflowRecord:
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            raise NotFound(f"No such workflow found by id: {workflow_id}")
        return workflow

    def terminate(self, workflow_id: str, reason: str | None) -> None:
        workflow = self.get_workflow(workflow_id)
        if workflow.status == "COMPLETED":
            raise Conflict("Cannot terminate a COMPLETED workflow.")
        if workflow.status == "TERMINATED":
            return
        self._end_workflow(workflow, "TERMINATED", reason, None)

    def remove(self, workflow_id: str) -> None:
        """Delete a workflow and its tasks (`DELETE /api/workflow/{id}/remove`); frees memory in long runs."""
        workflow = self.get_workflow(workflow_id)
        for task in workflow.tasks:
            if task.status == "IN_PROGRESS":
                self._leave_in_progress(task)
            self._forget_unfinished(task)
            self._unqueue(task)
            self.tasks.pop(task.task_id, None)
        del self.workflows[workflow_id]

    def pause(self, workflow_id: str) -> None:
        workflow = self.get_workflow(workflow_id)
        if workflow.terminal:
            raise Conflict(f"The workflow {workflow_id} has ended, status cannot be changed.")
        workflow.status = "PAUSED"
        workflow.update_time = self.now()

    def resume(self, workflow_id: str) -> None:
        workflow = self.get_workflow(workflow_id)
        if workflow.status != "PAUSED":
            raise Conflict(f"The workflow {workflow_id} is not PAUSED so cannot resume. Current status is {workflow.status}")
        workflow.status = "RUNNING"
        workflow.update_time = self.now()
        self.decide(workflow)

    def retry(self, workflow_id: str) -> None:
        workflow = self.get_workflow(workflow_id)
        if not workflow.terminal:
            raise NotFound(f"Workflow is still running.  status={workflow.status}")
        failed = [
            task
            for task in workflow.latest_by_ref.values()
            if task.status in ("FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED")
        ]
        if not failed:
            raise Conflict("There are no retryable tasks! Use restart if you want to attempt entire workflow execution again.")
        now = self.now()
        workflow.status = "RUNNING"
        workflow.last_retried_time = now
        workflow.end_time = 0
        workflow.reason = None
        workflow.update_time = now
        timeout = workflow.plan.definition["timeoutSeconds"]
        if timeout > 0:
            self._arm(now + timeout * 1000, workflow.workflow_id)
        for task in sorted(failed, key=lambda item: item.seq):
            task.retried = True
            self._schedule(workflow, task.step, previous=task, delay_seconds=0)

    def restart(self, workflow_id: str, use_latest: bool) -> None:
        workflow = self.get_workflow(workflow_id)
        if not workflow.terminal:
            raise Conflict(f"Workflow is still running.  status={workflow.status}")
        if use_latest:
            latest = self.metadata.find_workflowdef(workflow.plan.name, None)
            if latest is not None:
                workflow.plan = self.plan_for(latest)
        for task in workflow.tasks:
            self._unqueue(task)
            self.tasks.pop(task.task_id, None)
        now = self.now()
        workflow.tasks = []
        workflow.first_pending = 0
        workflow.latest_by_ref = {}
        workflow.status = "RUNNING"
        workflow.output = {}
        workflow.reason = None
        workflow.failed_task_id = None
        workflow.failed_refs = []
        workflow.failed_names = []
        workflow.create_time = now
        workflow.end_time = 0
        workflow.last_retried_time = 0
        workflow.update_time = now
        timeout = workflow.plan.definition["timeoutSeconds"]
        if timeout > 0:
            self._arm(now + timeout * 1000, workflow.workflow_id)
        self._schedule(workflow, workflow.plan.steps[0])

    # ------------------------------------------------------------ updates
    def find_task(self, task_id: str) -> TaskRecord:
        task = self.tasks.get(task_id)
        if task is None:
            raise NotFound(f"No such task found by id: {task_id}")
        return task

    def update(self, result: TaskResult) -> TaskRecord | None:
        """Apply a TaskResult as `POST /api/tasks` does; returns the task, or None for a lease extension."""
        if result.extend_lease:
            task = self.find_task(result.task_id)
            if not task.terminal:
                now = self.now()
                task.update_time = now
                if task.status == "IN_PROGRESS" and task.response_timeout > 0:
                    self._arm(now + (task.response_timeout + task.callback_after) * 1000, task.workflow.workflow_id)
            return None
        if result.workflow_id not in self.workflows:
            raise NotFound(f"No such workflow found by id: {result.workflow_id}")
        task = self.find_task(result.task_id)
        workflow = task.workflow
        if task.terminal or workflow.terminal:
            self._unqueue(task)
            return task
        if result.status is None:
            raise ServerError(
                'Cannot invoke "com.netflix.conductor.common.metadata.tasks.TaskResult$Status.ordinal()" '
                'because the return value of "com.netflix.conductor.common.metadata.tasks.TaskResult.getStatus()" is null'
            )
        now = self.now()
        task.output_data = result.output_data
        task.reason = result.reason
        task.worker_id = result.worker_id
        task.callback_after = result.callback_after
        task.update_time = now
        if result.status == "IN_PROGRESS":
            self._set_status(task, "SCHEDULED")
            self._push(task, result.callback_after * 1000)
            poll_timeout = task.step.taskdef.get("pollTimeoutSeconds")
            if poll_timeout:
                deadline = task.scheduled_time + (task.start_delay + poll_timeout + task.callback_after) * 1000
                self._arm(deadline, workflow.workflow_id)
        else:
            self._set_status(task, result.status)
            task.end_time = now
            self._unqueue(task)
        if result.logs:
            self._append_logs(task.task_id, result.logs[: self.settings.task_log_limit])
        workflow.update_time = now
        self.decide(workflow)
        return task

    def update_by_ref(
        self, workflow_id: str, ref: str, status: str, worker_id: str | None, output: dict[str, Any]
    ) -> TaskRecord | None:
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            return None
        pending = next((task for task in workflow.tasks if task.step.ref == ref and not task.terminal), None)
        if pending is None:
            return None
        merged = dict(pending.output_data)
        merged.update(output)
        result = TaskResult(
            workflow_id=workflow_id,
            task_id=pending.task_id,
            status=status,
            output_data=merged,
            reason=pending.reason,
            callback_after=pending.callback_after,
            worker_id=worker_id,
            extend_lease=False,
        )
        self.update(result)
        return pending

    def requeue_for_redelivery(self, task: TaskRecord) -> None:
        """Fault injection: treat a just-delivered task as if its worker sent IN_PROGRESS with no delay."""
        if task.status == "IN_PROGRESS":
            self._set_status(task, "SCHEDULED")
            self._push(task, 0)

    def _append_logs(self, task_id: str, entries: list[dict[str, Any]]) -> None:
        stored = self.logs.setdefault(task_id, [])
        for entry in entries:
            kept = {"log": entry.get("log"), "taskId": task_id, "createdTime": entry.get("createdTime", 0)}
            stored.append({key: value for key, value in kept.items() if value is not None})

    def add_log(self, task_id: str, line: str) -> None:
        self.logs.setdefault(task_id, []).append({"log": line, "taskId": task_id, "createdTime": self.now()})

    # ------------------------------------------------------------ inspection
    def queue_size(self, task_type: str, domain: str | None) -> int:
        found = self.queues.get(queue_name(task_type, domain))
        return len(found) if found is not None else 0

    def all_queue_sizes(self) -> dict[str, int]:
        return {name: len(self.queues[name]) for name in sorted(self.queues)}


def validate_priority(priority: int, path: str) -> None:
    if not 0 <= priority <= 99:
        raise ValidationFailed([(path, "priority: " + str(priority) + " should be minimum 0 and maximum 99", priority)])


def require_input(workflow_input: Any) -> dict[str, Any]:
    if workflow_input is None:
        raise BadRequest("NULL input passed when starting workflow")
    return workflow_input
