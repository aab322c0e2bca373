"""Thread mode: one process, one poller, N task threads, the same client and result mapping.

How a task flows: the poller asks Conductor for at most as many tasks as there are idle
task threads (so no task ever waits here for a thread), tracks each task's lease, and
hands it to an idle thread; the thread runs the attempt, delivers the TaskResult (with
update-v2 the answer may carry the next task, which the same thread runs at once), and
only then gives its capacity back. Polling never waits on updates: it runs on its own
thread and only ever waits for capacity.

Drain (SIGINT/SIGTERM, or `request_stop()`): polling stops at once; running tasks
finish and are reported, with their leases still extended (runtime.md W4) and with plain
updates so Conductor hands out nothing new; a task update-v2 handed over just before the
stop is run too, not abandoned (W17). With a drain deadline, every task still running
when it passes is reported FAILED (naming the deadline) so Conductor can retry it
without waiting for its response timeout, and the runner returns; a second signal
applies the deadline at once. Signal handlers only record the signal and wake the
main thread through a pipe (runtime.md W33).

With a `busy_slots` callback (the `runtime.busy_slots` gauge of a task whose
`MetricSpec.worker_capacity` is on), the number of task threads running an attempt chain
is reported whenever it changes.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from perago.attempt import AttemptRunner, FinishedAttempt, new_execution_id
from perago.conductor.backoff import POLL_AUTH_BACKOFF, POLL_ERROR_BACKOFF, Backoff, empty_poll_pause
from perago.conductor.client import ConductorClient, parse_tasks
from perago.conductor.errors import ConductorAuthError, ConductorError
from perago.conductor.lease import LeaseKeeper
from perago.result import failed, result_for_exception, task_result_json

FINAL_REPORT_BUDGET_SECONDS = 10.0
_STOP = object()


@dataclass(slots=True)
class _InFlight:
    task_id: str
    workflow_instance_id: str
    started: float = field(default_factory=time.monotonic)
    reported: bool = False


class ThreadRunner:
    """Polls one task type and runs its attempts on `threads` task threads until stopped."""

    def __init__(
        self,
        attempts: AttemptRunner,
        client: ConductorClient,
        *,
        threads: int,
        drain_deadline_seconds: float | None = None,
        lease_keeper: LeaseKeeper | None = None,
        poll_error_backoff: Backoff = POLL_ERROR_BACKOFF,
        poll_auth_backoff: Backoff = POLL_AUTH_BACKOFF,
        busy_slots: Callable[[int], None] | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("thread count must be at least 1")
        self.attempts = attempts
        self.client = client
        self.threads = threads
        self.task_type = attempts.definition.name
        self.drain_deadline_seconds = drain_deadline_seconds
        self._leases = lease_keeper or LeaseKeeper(client.extend_lease)
        self._poll_error_backoff = poll_error_backoff
        self._poll_auth_backoff = poll_auth_backoff
        self._cond = threading.Condition()
        self._free = threads
        self._running = 0  # task threads inside an attempt chain
        self._busy_slots = busy_slots  # the `runtime.busy_slots` gauge, when the task asks for it
        self._in_flight: dict[str, _InFlight] = {}
        self._stopping = threading.Event()
        self._poller_done = threading.Event()
        self._abort = threading.Event()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._signals = 0
        self.reported_count = 0

    # -- lifecycle -----------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool | None = None) -> int:
        """Run until stopped and drained; returns the process exit code (0)."""
        if install_signal_handlers is None:
            install_signal_handlers = threading.current_thread() is threading.main_thread()
        previous = self._install_signal_handlers() if install_signal_handlers else {}
        self._leases.start()
        if self._busy_slots is not None:
            self._busy_slots(0)
        workers = [
            threading.Thread(target=self._task_thread, name=f"perago-task-{index:04d}", daemon=True)
            for index in range(1, self.threads + 1)
        ]
        poller = threading.Thread(target=self._poll_loop, name="perago-poller", daemon=True)
        for thread in (*workers, poller):
            thread.start()
        try:
            self._wait_for_stop_then_drain(poller)
        finally:
            for _ in workers:
                self._queue.put(_STOP)
            join_until = time.monotonic() + 2.0
            for thread in workers:
                thread.join(timeout=max(0.0, join_until - time.monotonic()))
            self._leases.stop()
            self.client.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wake_read)
            os.close(self._wake_write)
        return 0

    def request_stop(self) -> None:
        """Start a drain (thread-safe; not for signal handlers, which use the wake pipe)."""
        self._stopping.set()
        self._wake()
        with self._cond:
            self._cond.notify_all()

    def _install_signal_handlers(self) -> dict[int, Any]:
        def on_signal(signum: int, frame: object) -> None:
            self._signals += 1
            try:
                os.write(self._wake_write, b"s")
            except BlockingIOError:
                pass

        return {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"w")
        except (BlockingIOError, OSError):
            pass

    def _wait_for_stop_then_drain(self, poller: threading.Thread) -> None:
        deadline: float | None = None
        forced_by_signal = False
        signals_seen = 0
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._wake_read], [], [], timeout)
            if ready:
                os.read(self._wake_read, 512)
            if self._signals > signals_seen:
                if signals_seen == 0:
                    logger.info("thread runner stopping: draining in-flight tasks", in_flight=self.in_flight())
                    self.request_stop()
                    if self.drain_deadline_seconds is not None:
                        deadline = time.monotonic() + self.drain_deadline_seconds
                if self._signals >= 2:
                    deadline = time.monotonic()
                    forced_by_signal = True
                signals_seen = self._signals
            if self._stopping.is_set() and deadline is None and self.drain_deadline_seconds is not None:
                deadline = time.monotonic() + self.drain_deadline_seconds
            if self._stopping.is_set() and self._poller_done.is_set() and self.in_flight() == 0:
                logger.info("thread runner drained", reported=self.reported_count)
                return
            if deadline is not None and time.monotonic() >= deadline:
                poller.join(timeout=1.0)
                if forced_by_signal:
                    self._fail_remaining("a second stop signal arrived during the drain")
                else:
                    self._fail_remaining(f"the shutdown drain deadline of {self.drain_deadline_seconds:g}s passed")
                return

    # -- polling -------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        try:
            self._poll_until_stopped()
        except Exception:  # a bug here must not leave the drain waiting forever
            logger.exception("the poller crashed; the runner stops polling and drains")
            self.request_stop()
        finally:
            self._poller_done.set()
            self._wake()

    def _poll_until_stopped(self) -> None:
        failures = auth_failures = empty_polls = 0
        last_poll = 0.0
        while not self._stopping.is_set():
            with self._cond:
                while self._free == 0 and not self._stopping.is_set():
                    self._cond.wait()
                free = self._free
            if self._stopping.is_set():
                break
            pause = empty_poll_pause(empty_polls) - (time.monotonic() - last_poll)
            if pause > 0 and self._stopping.wait(pause):
                break
            last_poll = time.monotonic()
            try:
                raw = self.client.poll_batch_raw(self.task_type, free)
                tasks = parse_tasks(raw)
            except (ConductorError, ValueError) as exc:
                if isinstance(exc, ConductorAuthError):
                    auth_failures += 1
                    delay = self._poll_auth_backoff.delay(auth_failures)
                else:
                    failures += 1
                    delay = self._poll_error_backoff.delay(failures)
                logger.warning(
                    "Conductor poll failed; backing off",
                    task_type=self.task_type,
                    error=str(exc),
                    retry_in_seconds=round(delay, 3),
                )
                self._stopping.wait(delay)
                continue
            failures = auth_failures = 0
            empty_polls = 0 if tasks else empty_polls + 1
            for task in tasks:
                self._admit(task)
                self._queue.put(task)

    def _admit(self, task: dict[str, Any]) -> None:
        task_id = str(task["taskId"])
        workflow_instance_id = str(task.get("workflowInstanceId") or "")
        with self._cond:
            self._free -= 1
            self._in_flight[task_id] = _InFlight(task_id, workflow_instance_id)
        self._leases.track(task_id, workflow_instance_id, task.get("responseTimeoutSeconds"))

    def in_flight(self) -> int:
        with self._cond:
            return len(self._in_flight)

    # -- task threads --------------------------------------------------------------------

    def _task_thread(self) -> None:
        while True:
            task = self._queue.get()
            if task is _STOP:
                return
            if self._busy_slots is not None:
                self._count_running(+1)
            try:
                self._run_chain(task)
            except Exception:  # keep the thread: its capacity is counted on
                logger.exception("task thread failed outside an attempt", task_id=task.get("taskId"))
            finally:
                if self._busy_slots is not None:
                    self._count_running(-1)
                with self._cond:
                    self._free += 1
                    self._cond.notify_all()
                if self._stopping.is_set():
                    self._wake()

    def _count_running(self, change: int) -> None:
        """Move the running-thread count and set the gauge under the same lock, so the
        exported value never goes back to an older count."""
        assert self._busy_slots is not None
        with self._cond:
            self._running += change
            self._busy_slots(self._running)

    def _run_chain(self, task: dict[str, Any] | None) -> None:
        """Run `task` and every task update-v2 hands back after it, on this thread."""
        while task is not None:
            task_id = str(task["taskId"])
            try:
                next_raw = self._report(self._execute(task))
            finally:
                self._leases.untrack(task_id)
                with self._cond:
                    self._in_flight.pop(task_id, None)
            task = self._next_task(next_raw)

    def _execute(self, task: dict[str, Any]) -> FinishedAttempt:
        execution_id = new_execution_id()
        try:
            return self.attempts.run(task, execution_id)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from task code fails the task, not the runner
            task_id = str(task.get("taskId") or "")
            result = result_for_exception(exc, max_length=self.attempts.failure_reason_max_length, task_id=task_id)
            return FinishedAttempt(task_id, str(task.get("workflowInstanceId") or ""), execution_id, result)

    def _report(self, finished: FinishedAttempt) -> bytes | None:
        if not self._claim_report(finished.task_id):
            logger.warning(
                "task finished after it was already reported at the drain deadline; result dropped",
                task_id=finished.task_id,
                status=finished.result.status,
            )
            return None
        delivery = self.client.deliver_result(
            finished.task_result_json(self.client.worker_id),
            task_id=finished.task_id,
            workflow_instance_id=finished.workflow_instance_id,
            want_next=not self._stopping.is_set(),
            abort=self._abort,
        )
        if delivery.delivered:
            with self._cond:
                self.reported_count += 1
        return delivery.next_task

    def _next_task(self, raw: bytes | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            task = json.loads(raw)
        except ValueError:
            logger.error("update-v2 answered with a task that is not valid JSON; Conductor will time it out")
            return None
        if not isinstance(task, dict) or not task.get("taskId"):
            return None
        self._admit_chained(task)
        return task

    def _admit_chained(self, task: dict[str, Any]) -> None:
        task_id = str(task["taskId"])
        workflow_instance_id = str(task.get("workflowInstanceId") or "")
        with self._cond:
            self._in_flight[task_id] = _InFlight(task_id, workflow_instance_id)
        self._leases.track(task_id, workflow_instance_id, task.get("responseTimeoutSeconds"))

    def _claim_report(self, task_id: str) -> bool:
        with self._cond:
            entry = self._in_flight.get(task_id)
            if entry is None:
                return True
            if entry.reported:
                return False
            entry.reported = True
            return True

    # -- drain deadline ------------------------------------------------------------------

    def _fail_remaining(self, why: str) -> None:
        self._abort.set()
        with self._cond:
            remaining = [entry for entry in self._in_flight.values() if not entry.reported]
            for entry in remaining:
                entry.reported = True
        reason = f"perago worker {self.client.worker_id} stopped before this task finished: {why}"
        for entry in remaining:
            logger.error(
                "failing in-flight task at the end of the drain",
                why=why,
                task_id=entry.task_id,
                workflow_instance_id=entry.workflow_instance_id,
                running_seconds=round(time.monotonic() - entry.started, 3),
                deadline_seconds=self.drain_deadline_seconds,
            )
            result = failed(reason, max_length=self.attempts.failure_reason_max_length, task_id=entry.task_id)
            body = task_result_json(
                result,
                task_id=entry.task_id,
                workflow_instance_id=entry.workflow_instance_id,
                worker_id=self.client.worker_id,
            )
            self.client.deliver_result(
                body,
                task_id=entry.task_id,
                workflow_instance_id=entry.workflow_instance_id,
                want_next=False,
                give_up_after_seconds=FINAL_REPORT_BUDGET_SECONDS,
            )
            self._leases.untrack(entry.task_id)

