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
import os
import random
from collections import defaultdict, deque
from collections.abc import Callable
from itertools import count, islice
from typing import Any

from perago.testing.conductor.clock import Clock
from perago.testing.conductor.errors import BadRequest, Conflict, NotFound, ServerError, ValidationFailed
from perago.testing.conductor.expressions import TASK_ID_PLACEHOLDER, evaluate, walk
from perago.testing.conductor.metadata import INT_MAX, MetadataStore, default_taskdef
from perago.testing.conductor.queues import TaskQueue, queue_name
from perago.testing.conductor.records import (
    RETRIABLE_TASK_STATUSES,
    SUCCESSFUL_TASK_STATUSES,
    TERMINAL_TASK_STATUSES,
    PlanStep,
    TaskRecord,
    WorkflowPlan,
    WorkflowRecord,
)
from perago.testing.conductor.settings import EmulatorSettings
from perago.testing.conductor.task_result import TaskResult


class _WorkflowEnded(Exception):
    """Raised inside `decide` when a task outcome ends the workflow (OSS's TerminateWorkflowException)."""

    def __init__(self, status: str, reason: str, task: TaskRecord | None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.task = task


def _new_id() -> str:
    """A random UUID v4 string, like `str(uuid.uuid4())` at a third of the cost."""
    digits = os.urandom(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class Engine:
    """All server state and every state-changing operation."""

    def __init__(self, settings: EmulatorSettings, clock: Clock, seed: int | None = None) -> None:
        self.settings = settings
        self.behaviour = settings.behaviour
        self.clock = clock
        self.now: Callable[[], int] = clock.now_ms  # epoch ms on the injected clock
        self.metadata = MetadataStore(settings.owner_email_mandatory)
        self.tasks: dict[str, TaskRecord] = {}
        self.workflows: dict[str, WorkflowRecord] = {}
        self.queues: dict[str, TaskQueue] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.poll_data: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.in_progress: dict[str, int] = defaultdict(int)
        # Per task type with a concurrentExecLimit: its unfinished tasks in creation order (§5.5).
        self.unfinished: dict[str, dict[str, None]] = defaultdict(dict)
        self.postponed: dict[str, deque[str]] = defaultdict(deque)
        self.hand_outs: dict[str, deque[int]] = defaultdict(deque)
        self.on_push: Callable[[str], None] = lambda name: None
        self._timers: list[tuple[int, int, str]] = []
        self._timer_numbers = count()
        self._plans: dict[tuple[str, int], tuple[int, WorkflowPlan]] = {}
        self._random = random.Random(seed)

    # ------------------------------------------------------------------ time
    def _arm(self, deadline_ms: int, workflow_id: str) -> None:
        heapq.heappush(self._timers, (deadline_ms, next(self._timer_numbers), workflow_id))

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

    # ------------------------------------------------------------ queues
    def queue(self, name: str) -> TaskQueue:
        found = self.queues.get(name)
        if found is None:
            found = self.queues[name] = TaskQueue(name)
        return found

    def _push(self, task: TaskRecord, delay_ms: int) -> None:
        now = self.now()
        self.queue(task.queue_name).push(task.task_id, now + delay_ms, now)
        if delay_ms <= 0:
            self.on_push(task.queue_name)

    def _unqueue(self, task: TaskRecord) -> None:
        found = self.queues.get(task.queue_name)
        if found is not None:
            found.remove(task.task_id)

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

    def _leave_in_progress(self, task: TaskRecord) -> None:
        """Bookkeeping when a task stops being IN_PROGRESS (frees a concurrency slot)."""
        name = task.step.name
        self.in_progress[name] -= 1
        if not self.behaviour.release_postponed_on_free_slot:
            return
        waiting = self.postponed.get(name)
        while waiting:
            task_id = waiting.popleft()
            held = self.tasks.get(task_id)
            if held is not None and held.status == "SCHEDULED" and task_id in self.queue(held.queue_name):
                self._push(held, 0)
                return

    def _set_status(self, task: TaskRecord, status: str) -> None:
        if task.status == "IN_PROGRESS" and status != "IN_PROGRESS":
            self._leave_in_progress(task)
        if status in TERMINAL_TASK_STATUSES:
            self._forget_unfinished(task)
        task.status = status

    def _forget_unfinished(self, task: TaskRecord) -> None:
        unfinished = self.unfinished.get(task.step.name)
        if unfinished:
            unfinished.pop(task.task_id, None)

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
        workflow = WorkflowRecord(_new_id(), plan, workflow_input, now)
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

    # ------------------------------------------------------------ scheduling
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
        task = TaskRecord(_new_id(), workflow, step, now)
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

    # ------------------------------------------------------------ decide
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
