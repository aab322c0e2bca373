"""`python -m perago.broker MODULE_TARGET`: process mode's single Conductor-facing process.

Started by the Rust supervisor with the control socket (`PERAGO_CONTROL_FD`). The Rust
dispatcher (`_core.Dispatcher`, rust/src/dispatcher.rs) owns it and every executor slot
socket that arrives on it: slot leasing, Assign/Complete frames, completion matching and
exit events happen there, and the loop thread here sees only small events and bytes
(poll answers and handed-back tasks are split and read in Rust, `_core.split_poll_answer`
and `_core.task_head`). The loop thread owns all broker state; the poller thread only
posts actions to it and wakes the dispatcher's wait (leases are kept on their own thread):

- the poller thread asks Conductor for at most as many tasks as there are leasable slots
  not already promised to a task (batch long-poll), so a polled task never waits for a
  slot, and polling never waits on updates;
- each polled task goes to a free slot in an Assign frame with the task JSON exactly as
  Conductor sent it and a fresh execution id; its lease is extended from the moment it
  was polled until its result is delivered — through update retries and the drain (W4);
- a completion counts only if it matches the slot's lease (fail closed, in the
  dispatcher). Against a plain-HTTP Conductor without token auth, the dispatcher's result
  relay (rust/src/relay.rs) sends its TaskResult bytes with update-v2 itself and puts the
  task handed back in the answer on a slot, and this loop only hears `TaskRelayed` (for
  the leases): the broker's Python does no per-task HTTP. Whatever the relay's first try
  does not deliver comes back as `TaskCompleted`, like every completion without the
  relay: its bytes are sent as is from this thread over a non-blocking connection the
  dispatcher watches (`perago.conductor.loop_calls`: no thread hand-off per task), with
  the client's whole policy (retries, update-v2 fallback — which also stops the relay —,
  undeliverable logging), and a task that update-v2 hands back goes to the slot it freed;
- when an executor exits, a completion already in its socket is read first (W7), then a
  still-leased task is failed to Conductor at once, naming the worker and exit status;
- attempt-fence requests are answered from `GET /tasks/{taskId}` on the same slot and
  generation only (W9);
- on Drain (or SIGINT/SIGTERM) polling stops, in-flight tasks finish and are reported,
  then every executor gets a Stop frame and the supervisor a Drained frame; with
  `PERAGO_SHUTDOWN_FORCE_KILL_AFTER`, tasks still running shortly before the supervisor's
  force kill are reported FAILED (naming the deadline) so Conductor retries them at once.

For a task whose `MetricSpec.worker_capacity` is on, the gauge `runtime.busy_slots` follows
the leased-slot count (set once per loop pass when it changed); its recorder is shut down,
flushing the last value, when the loop ends.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue

from loguru import logger

from perago import _core
from perago.conductor import ConductorClient, Delivery, LeaseKeeper, client_from_config, conductor_worker_id
from perago.conductor.backoff import POLL_AUTH_BACKOFF, POLL_ERROR_BACKOFF, Backoff, empty_poll_pause
from perago.conductor.errors import ConductorAuthError, ConductorError
from perago.conductor.loop_calls import LoopCalls
from perago.config import load_runtime_config
from perago.errors import RuntimeConfigError
from perago.fence_rpc import encode_error
from perago.metrics import worker_metrics
from perago.result import failed, task_result_json
from perago.runtime_logging import configure_process_logging, log_process_started
from perago.task import load_module_task
from perago.worker_identity import resolve_worker_id

Action = Callable[[], None]


class Broker:
    """The loop thread's state and handlers; `run()` returns the process exit code."""

    def __init__(
        self,
        dispatcher: _core.Dispatcher,
        client: ConductorClient,
        task_type: str,
        *,
        failure_reason_max_length: int,
        drain_deadline_seconds: float | None = None,
        poll_error_backoff: Backoff = POLL_ERROR_BACKOFF,
        busy_slots: Callable[[int], None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.busy_slots = busy_slots  # the `runtime.busy_slots` gauge, when the task asks for it
        self.busy_slots_recorded: int | None = None
        self.client = client
        self.task_type = task_type
        self.failure_reason_max_length = failure_reason_max_length
        self.leases = LeaseKeeper(client.extend_lease)
        self.inbox: SimpleQueue[Action] = SimpleQueue()
        self.pending: deque[tuple[str, bytes]] = deque()  # (task id, task JSON) waiting for a slot
        self.workflows: dict[str, str] = {}  # task id -> workflow id, from poll to delivery
        self.calls = LoopCalls(client, watch=dispatcher.watch_fd, unwatch=dispatcher.unwatch_fd)
        self.wake_pending = False
        self.poll_error_backoff = poll_error_backoff
        self.drain_deadline_seconds = drain_deadline_seconds
        self.report_by: float | None = None
        self.deliveries = 0
        self.promised = 0  # slots kept free for tasks update-v2 may hand back
        self.draining = False
        self.signalled = False
        self.abort = threading.Event()
        self.capacity_lock = threading.Condition(threading.RLock())
        self.capacity = 0
        self.polling = 0
        self.poller_done = threading.Event()
        self.polling_stopped = threading.Event()

    # -- loop ------------------------------------------------------------------------------

    def run(self) -> int:
        self.leases.start()
        relay = self.client.update_v2_relay()
        if relay is not None:
            self.dispatcher.start_relay(*relay, self.client.request_timeout_seconds)
        poller = threading.Thread(target=self._poll_loop, name="perago-poller", daemon=True)
        poller.start()
        self.dispatcher.ready()
        try:
            return self._loop()
        finally:
            self._stop_polling()
            self.abort.set()
            self.calls.close()
            self.leases.stop()
            self.client.close()

    def _loop(self) -> int:
        while True:
            if self.signalled and not self.draining:
                self._begin_drain("signal")
            if self.draining and self.pending and self.dispatcher.attached == 0:
                self._fail_unassignable()
            if self.draining and self._drained():
                self.dispatcher.stop_executors()
                self.dispatcher.drained()
                logger.info("process broker drained")
                return 0
            if self.report_by is not None and self.report_by <= time.monotonic():
                self._fail_at_deadline()
            for event in self.dispatcher.next_events(self._wait_timeout()):
                kind = type(event)
                if kind is _core.FdReadable:
                    self.calls.on_readable(event.fd)
                elif kind is _core.TaskRelayed:
                    self._relayed(event)
                elif kind is _core.TaskCompleted:
                    self.promised += 1
                    self._deliver(event.task_id, event.result, may_chain=True)
                elif kind is _core.TaskFailed:
                    self._fail(event.task_id, event.reason)
                elif kind is _core.FenceRequested:
                    self._on_fence_request(event)
                elif kind is _core.DispatcherLog:
                    logger.error(event.message, **event.fields)
                elif kind is _core.Drain:
                    self._begin_drain("supervisor")
                elif kind is _core.Closed:
                    logger.error("supervisor control socket closed; broker exits")
                    return 1
            self.calls.run_due()
            self.wake_pending = False  # before draining: a later post wakes again
            while not self.inbox.empty():
                self.inbox.get()()
            self._assign_pending()
            self._publish_capacity()
            if self.busy_slots is not None:
                self._record_busy_slots()

    def _record_busy_slots(self) -> None:
        """Leased slots after this pass's leases, releases and executor exits (on change only)."""
        leased = self.dispatcher.leases
        if leased != self.busy_slots_recorded:
            self.busy_slots_recorded = leased
            assert self.busy_slots is not None
            self.busy_slots(leased)

    def _wait_timeout(self) -> float | None:
        """Until the next thing the loop must do on its own: a Conductor call's timer or
        the drain's report deadline (`None`: until an event)."""
        deadlines = [d for d in (self.calls.next_deadline(), self.report_by) if d is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def post(self, action: Action) -> None:
        """Run `action` on the loop thread (callable from any thread).

        One wake per loop pass, not per action: `wake_pending` is cleared by the loop
        before it drains the inbox, so an action put after that drain started wakes again.
        """
        self.inbox.put(action)
        if self.wake_pending:
            return
        self.wake_pending = True
        self.dispatcher.wake()

    def on_signal(self, signum: int, frame: object) -> None:
        self.signalled = True
        self.dispatcher.wake()

    # -- attempt fence ---------------------------------------------------------------------

    def _on_fence_request(self, request: _core.FenceRequested) -> None:
        slot, generation = request.slot, request.generation

        def reply(task: bytes | None, error: BaseException | None) -> None:
            # The executor fails the attempt with the error text; the dispatcher drops the
            # reply if that executor generation is gone (W9).
            answer = task if error is None else encode_error(f"{type(error).__name__}: {error}")
            self.dispatcher.fence_reply(slot, generation, answer)

        self.calls.start(self.client.get_task_exchange(request.task_id), reply)

    # -- dispatch --------------------------------------------------------------------------

    def _admit(self, task_id: str, workflow_instance_id: str, response_timeout: float | None, raw: bytes) -> None:
        self.pending.append((task_id, raw))
        self._track(task_id, workflow_instance_id, response_timeout)

    def _track(self, task_id: str, workflow_instance_id: str, response_timeout: float | None) -> None:
        """The task is ours from now until its result is settled: its lease is kept alive."""
        self.workflows[task_id] = workflow_instance_id
        self.leases.track(task_id, workflow_instance_id, response_timeout)

    def _settled(self, task_id: str) -> None:
        """Its result was delivered or given up."""
        self.leases.untrack(task_id)
        self.workflows.pop(task_id, None)

    def _assign_pending(self) -> None:
        while self.pending:
            task_id, raw = self.pending[0]
            if self.dispatcher.assign(raw, task_id) is None:
                return
            self.pending.popleft()

    def _fail(self, task_id: str, reason: str) -> None:
        logger.error("failing task of a lost executor", task_id=task_id, reason=reason)
        result = failed(reason, max_length=self.failure_reason_max_length, task_id=task_id)
        body = task_result_json(
            result,
            task_id=task_id,
            workflow_instance_id=self.workflows.get(task_id, ""),
            worker_id=self.client.worker_id,
        )
        self._deliver(task_id, body, may_chain=False)

    # -- delivery --------------------------------------------------------------------------

    def _deliver(self, task_id: str, body: bytes, *, may_chain: bool) -> None:
        self.deliveries += 1
        want_next = may_chain and not self.draining
        workflow_instance_id = self.workflows.get(task_id, "")

        def delivered(delivery: Delivery | None, error: BaseException | None) -> None:
            if error is not None:  # a bug must not leave the drain waiting for this delivery
                logger.opt(exception=error).error("task result delivery failed", task_id=task_id)
            self._delivered(task_id, delivery if error is None else Delivery(False), may_chain)

        exchange = self.client.delivery_exchange(
            body, task_id=task_id, workflow_instance_id=workflow_instance_id, want_next=want_next, abort=self.abort
        )
        self.calls.start(exchange, delivered)

    def _relayed(self, event: _core.TaskRelayed) -> None:
        self._settled(event.task_id)
        task_id = event.next_task_id
        if task_id is None:
            return
        workflow_instance_id = event.next_workflow_instance_id or ""
        if event.next_task is None:  # already on a slot
            self._track(task_id, workflow_instance_id, event.next_response_timeout)
        else:
            self._admit(task_id, workflow_instance_id, event.next_response_timeout, event.next_task)

    def _delivered(self, task_id: str, delivery: Delivery, may_chain: bool) -> None:
        if not self.client.uses_update_v2:
            self.dispatcher.stop_relay()
        self.deliveries -= 1
        self._settled(task_id)
        if may_chain:
            self.promised -= 1
        if delivery.next_task is None:
            return
        try:
            head = _core.task_head(delivery.next_task)
        except ValueError:
            logger.error("update-v2 answered with a task that is not valid JSON; Conductor will time it out")
            return
        if head is not None:
            self._admit(*head, delivery.next_task)

    # -- polling ---------------------------------------------------------------------------

    def _publish_capacity(self, *, polling_changed: bool = False) -> None:
        """Tell the poller how many tasks it may ask for; wake it only when it can act on it
        (a wake per loop pass cost the poller thread a lock and a GIL round trip each time)."""
        free = 0 if self.draining else self.dispatcher.free_slots - self.promised - len(self.pending)
        if free == self.capacity and not polling_changed:
            return
        with self.capacity_lock:
            self.capacity = free
            if free - self.polling > 0:
                self.capacity_lock.notify()

    def _poll_loop(self) -> None:
        try:
            self._poll_until_draining()
        except Exception:  # noqa: BLE001 - a poller bug stops polling; the broker still drains
            logger.exception("the poller crashed; the broker stops polling")
        finally:
            self.poller_done.set()
            self.post(lambda: None)

    def _poll_until_draining(self) -> None:
        failures = auth_failures = empty_polls = 0
        while True:
            with self.capacity_lock:
                while not self.draining and self.capacity - self.polling <= 0:
                    self.capacity_lock.wait()
                if self.draining:
                    return
                count = self.capacity - self.polling
                self.polling = count
            pause = empty_poll_pause(empty_polls)
            if pause and self.polling_stopped.wait(pause):
                self._hand_over([])
                return
            try:
                tasks = _core.split_poll_answer(self.client.poll_batch_raw(self.task_type, count))
            except (ConductorError, ValueError) as exc:
                self._hand_over([])
                if isinstance(exc, ConductorAuthError):
                    auth_failures += 1
                    delay = POLL_AUTH_BACKOFF.delay(auth_failures)
                else:
                    failures += 1
                    delay = self.poll_error_backoff.delay(failures)
                logger.warning("Conductor poll failed; backing off", error=str(exc), retry_in_seconds=round(delay, 3))
                if self.polling_stopped.wait(delay):
                    return
                continue
            failures = auth_failures = 0
            empty_polls = 0 if tasks else empty_polls + 1
            self._hand_over(tasks)

    def _hand_over(self, tasks: list[tuple[str, str, float | None, bytes]]) -> None:
        done = threading.Event()

        def receive() -> None:
            for task in tasks:
                self._admit(*task)
            self._assign_pending()
            with self.capacity_lock:
                self.polling = 0
                self._publish_capacity(polling_changed=True)
            done.set()

        self.post(receive)
        done.wait()

    def _stop_polling(self) -> None:
        with self.capacity_lock:
            self.draining = True
            self.capacity_lock.notify_all()
        self.polling_stopped.set()

    # -- drain -----------------------------------------------------------------------------

    def _begin_drain(self, by: str) -> None:
        if self.draining:
            return
        logger.info(
            "process broker draining", requested_by=by, in_flight=self.dispatcher.leases, queued=len(self.pending)
        )
        self._stop_polling()
        self.dispatcher.stop_relay()  # results are sent with the plain update from now on
        deadline = self.drain_deadline_seconds
        if deadline is not None:
            # Report unfinished tasks shortly before the supervisor's force kill, so Conductor
            # can retry them at once instead of after their response timeout.
            self.report_by = time.monotonic() + deadline - min(1.0, deadline / 4)

    def _fail_at_deadline(self) -> None:
        self.report_by = None
        reason = (
            f"perago worker {self.client.worker_id} stopped before this task finished: "
            f"the shutdown drain deadline of {self.drain_deadline_seconds:g}s passed"
        )
        for task_id in self.dispatcher.abandon_leases():
            self._fail(task_id, reason)
        while self.pending:
            task_id, _ = self.pending.popleft()
            self._fail(task_id, reason)

    def _drained(self) -> bool:
        return (
            self.poller_done.is_set()
            and not self.pending
            and self.dispatcher.leases == 0
            and self.deliveries == 0
            and self.dispatcher.relay_in_flight == 0
        )

    def _fail_unassignable(self) -> None:
        """Draining with queued tasks and no executor left to run them: report them now."""
        while self.pending:
            task_id, _ = self.pending.popleft()
            self._fail(task_id, f"perago broker stopped before an executor could take task {task_id}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m perago.broker MODULE_TARGET\n")
        return 2
    module_target = args[0]
    dispatcher = _core.Dispatcher.from_env()
    config = load_runtime_config(module_target, probe_roots=False)
    if config.conductor is None:
        raise RuntimeConfigError("CONDUCTOR_SERVER_URL is required for perago start")
    worker_id = resolve_worker_id(module_target)
    task = load_module_task(module_target)
    log_file = configure_process_logging(config, module_target=module_target, worker_id=worker_id)
    log_process_started("broker", worker_id=worker_id, module_target=module_target, log_file=log_file)
    client = client_from_config(config.conductor, worker_id=conductor_worker_id(config.worker_id_prefix))
    deadline = config.shutdown_force_kill_after
    # The broker's only metric is the busy-slots gauge.
    metrics = worker_metrics(task, config) if task.metrics is not None and task.metrics.worker_capacity else None

    broker = Broker(
        dispatcher,
        client,
        task.name,
        failure_reason_max_length=config.failure_reason_max_length,
        drain_deadline_seconds=None if deadline is None else deadline.total_seconds(),
        busy_slots=None if metrics is None else metrics.set_busy_slots,
    )
    signal.signal(signal.SIGTERM, broker.on_signal)
    signal.signal(signal.SIGINT, broker.on_signal)
    # A signal may land on a helper thread; this fd still ends the dispatcher's wait.
    signal.set_wakeup_fd(dispatcher.wakeup_fd, warn_on_full_buffer=False)
    try:
        return broker.run()
    finally:
        if metrics is not None:
            metrics.shutdown()


if __name__ == "__main__":
    sys.exit(main())
