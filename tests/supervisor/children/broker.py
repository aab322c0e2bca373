"""A stand-in broker speaking perago's control and slot protocol, steered by TEST_* variables.

It answers fence requests with `fresh copy of <request>` (except "ignore me"),
dispatches the tasks in TEST_TASKS (a JSON list of task objects, one per ready slot
in slot order), journals every frame it sees, and on Drain waits for in-flight tasks,
sends Stop to every executor, answers Drained and exits 0.
TEST_BROKER_MODE: `normal` | `boot_error` (exit 1 before ready) | `exit_after_ready`
(exit 1 once every slot has reported ready).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import journal
from perago import _core

MODE = os.environ.get("TEST_BROKER_MODE", "normal")
drain_requested = False


def on_signal(signum: int, frame: object) -> None:
    global drain_requested
    drain_requested = True


def main() -> int:
    global drain_requested
    if MODE == "boot_error":
        sys.stderr.write(
            "broker cannot start: CONDUCTOR_SERVER_URL is required for perago start\n"
        )
        return 1
    control = _core.BrokerControl.from_env()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    control.ready()
    journal.record("broker_ready")
    tasks = list(json.loads(os.environ.get("TEST_TASKS", "[]")))
    process_count = int(os.environ["PERAGO_PROCESS_COUNT"])
    selector = selectors.DefaultSelector()
    selector.register(control.fileno(), selectors.EVENT_READ, None)
    endpoints: dict[int, _core.SlotEndpoint] = {}
    generations: dict[int, int] = {}
    ready: set[int] = set()
    in_flight: dict[int, int] = {}  # slot -> dispatch id
    next_dispatch = 1

    def dispatch() -> None:
        nonlocal next_dispatch
        for slot in sorted(ready):
            if not tasks or drain_requested:
                return
            if slot in in_flight:
                continue
            task = tasks.pop(0)
            endpoints[slot].send_assign(
                next_dispatch, uuid.uuid4().hex, json.dumps(task).encode()
            )
            journal.record(
                "assigned",
                slot=slot,
                generation=generations[slot],
                dispatch_id=next_dispatch,
            )
            in_flight[slot] = next_dispatch
            next_dispatch += 1

    while True:
        if drain_requested and not in_flight:
            for slot, endpoint in sorted(endpoints.items()):
                endpoint.send_stop()
            journal.record("broker_drained")
            control.drained()
            return 0
        for key, _ in selector.select():
            if key.data is None:
                message = control.recv(timeout=0)
                while message is not None:
                    if isinstance(message, _core.SlotSocket):
                        old = endpoints.pop(message.slot, None)
                        if old is not None:
                            selector.unregister(old.fileno())
                            old.close()
                        ready.discard(message.slot)
                        endpoints[message.slot] = message.endpoint
                        generations[message.slot] = message.generation
                        selector.register(
                            message.endpoint.fileno(),
                            selectors.EVENT_READ,
                            message.slot,
                        )
                        journal.record(
                            "slot_socket",
                            slot=message.slot,
                            generation=message.generation,
                            worker_id=message.worker_id,
                        )
                    elif isinstance(message, _core.ExecutorExited):
                        journal.record(
                            "executor_exited",
                            slot=message.slot,
                            generation=message.generation,
                            worker_id=message.worker_id,
                            exit_code=message.exit_code,
                            signal=message.signal,
                        )
                        if message.generation == generations.get(message.slot):
                            ready.discard(message.slot)
                            if message.slot in in_flight:
                                journal.record(
                                    "task_failed",
                                    slot=message.slot,
                                    dispatch_id=in_flight.pop(message.slot),
                                )
                    elif isinstance(message, _core.Drain):
                        journal.record("drain")
                        drain_requested = True
                    elif isinstance(message, _core.Closed):
                        journal.record("control_closed")
                        return 1
                    message = control.recv(timeout=0)
            else:
                slot = key.data
                message = endpoints[slot].recv(timeout=0)
                if isinstance(message, _core.Ready):
                    ready.add(slot)
                    journal.record(
                        "executor_ready_frame", slot=slot, generation=message.generation
                    )
                    if MODE == "exit_after_ready" and len(ready) == process_count:
                        journal.record("broker_exit_on_purpose")
                        return 1
                elif isinstance(message, _core.Complete):
                    journal.record(
                        "complete",
                        slot=slot,
                        dispatch_id=message.dispatch_id,
                        result=json.loads(message.result),
                    )
                    in_flight.pop(slot, None)
                elif isinstance(message, _core.FenceRequest):
                    request = message.request.decode()
                    journal.record(
                        "fence_request",
                        slot=slot,
                        dispatch_id=message.dispatch_id,
                        request=request,
                    )
                    if request != "ignore me":
                        endpoints[slot].send_fence_reply(
                            message.dispatch_id, f"fresh copy of {request}".encode()
                        )
                elif isinstance(message, _core.Closed):
                    selector.unregister(endpoints[slot].fileno())
                    endpoints.pop(slot).close()
        dispatch()


if __name__ == "__main__":
    sys.exit(main())
