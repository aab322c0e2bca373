"""A stand-in broker for executor tests: dispatches Conductor tasks from a file, records results.

TEST_TASKS_FILE: JSON list of Conductor task objects, dispatched in order to ready slots.
TEST_RESULTS_FILE: one JSON line per outcome: {"kind": "complete", "dispatch_id", "execution_id",
"result": <TaskResult>} or {"kind": "executor_exited", "dispatch_id", "exit_code"}.
TEST_FENCE_REPLY: bytes to answer every attempt-fence request with (optional).
On Drain it waits for in-flight tasks, sends Stop to every executor and exits 0.
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import uuid

from perago import _core


def record(entry: dict[str, object]) -> None:
    with open(os.environ["TEST_RESULTS_FILE"], "a") as results:
        results.write(json.dumps(entry) + "\n")


def main() -> int:
    control = _core.BrokerControl.from_env()
    control.ready()
    tasks = json.loads(open(os.environ["TEST_TASKS_FILE"]).read())
    fence_reply = os.environ.get("TEST_FENCE_REPLY", "").encode()
    selector = selectors.DefaultSelector()
    selector.register(control.fileno(), selectors.EVENT_READ, None)
    endpoints: dict[int, _core.SlotEndpoint] = {}
    generations: dict[int, int] = {}
    ready: set[int] = set()
    in_flight: dict[int, tuple[int, str]] = {}
    next_dispatch = 1
    draining = False
    while True:
        if draining and not in_flight:
            for endpoint in endpoints.values():
                endpoint.send_stop()
            control.drained()
            return 0
        for slot in sorted(ready - set(in_flight)):
            if tasks and not draining:
                execution_id = uuid.uuid4().hex
                endpoints[slot].send_assign(next_dispatch, execution_id, json.dumps(tasks.pop(0)).encode())
                in_flight[slot] = (next_dispatch, execution_id)
                next_dispatch += 1
        for key, _ in selector.select():
            if key.data is None:
                message = control.recv(timeout=0)
                while message is not None:
                    if isinstance(message, _core.SlotSocket):
                        old = endpoints.pop(message.slot, None)
                        if old is not None:
                            selector.unregister(old.fileno())
                            old.close()
                        endpoints[message.slot] = message.endpoint
                        generations[message.slot] = message.generation
                        selector.register(message.endpoint.fileno(), selectors.EVENT_READ, message.slot)
                    elif isinstance(message, _core.ExecutorExited):
                        if message.generation == generations.get(message.slot):
                            ready.discard(message.slot)
                            if message.slot in in_flight:
                                dispatch_id, _ = in_flight.pop(message.slot)
                                record({"kind": "executor_exited", "dispatch_id": dispatch_id, "exit_code": message.exit_code})
                    elif isinstance(message, _core.Drain):
                        draining = True
                    elif isinstance(message, _core.Closed):
                        return 1
                    message = control.recv(timeout=0)
                continue
            slot = key.data
            message = endpoints[slot].recv(timeout=0)
            if isinstance(message, _core.Ready):
                ready.add(slot)
            elif isinstance(message, _core.Complete):
                expected = in_flight.pop(slot, None)
                record(
                    {
                        "kind": "complete",
                        "dispatch_id": message.dispatch_id,
                        "execution_id": message.execution_id,
                        "matches": expected == (message.dispatch_id, message.execution_id),
                        "result": json.loads(message.result),
                    }
                )
            elif isinstance(message, _core.FenceRequest):
                endpoints[slot].send_fence_reply(message.dispatch_id, fence_reply)
            elif isinstance(message, _core.Closed):
                selector.unregister(endpoints[slot].fileno())
                endpoints.pop(slot).close()


if __name__ == "__main__":
    sys.exit(main())
