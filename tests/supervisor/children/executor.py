"""A stand-in executor speaking perago's slot protocol, steered by TEST_* variables.

TEST_EXECUTOR_MODE: `normal` | `boot_error` (exit 1 before ready, with a traceback on
stderr) | `hang_on_stop` (ignore SIGTERM/SIGINT and never exit on Stop).
TEST_CRASH_PLAN: comma-separated seconds, one per generation: exit 1 that long after
ready (an empty item or a missing generation = stay up).
Tasks (JSON in Assign frames): {"sleep": s, "attempt": bool, "crash": bool, "fence": request,
"fence_timeout": s}.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import journal
from perago import _core

MODE = os.environ.get("TEST_EXECUTOR_MODE", "normal")
GENERATION = int(os.environ["PERAGO_SLOT_GENERATION"])
WORKER_ID = os.environ["PERAGO_WORKER_ID"]
stop_requested = False


def crash_after() -> float | None:
    plan = os.environ.get("TEST_CRASH_PLAN", "").split(",")
    if GENERATION <= len(plan) and plan[GENERATION - 1].strip():
        return float(plan[GENERATION - 1])
    return None


def on_signal(signum: int, frame: object) -> None:
    global stop_requested
    stop_requested = True
    journal.record("executor_signal", worker_id=WORKER_ID, signal=signum)


def run_task(channel: _core.ExecutorChannel, assign: _core.Assign) -> None:
    task = json.loads(assign.task)
    journal.record(
        "task_started",
        worker_id=WORKER_ID,
        generation=GENERATION,
        dispatch_id=assign.dispatch_id,
    )
    attempt = None
    if task.get("attempt"):
        attempt = _core.create_attempt_workspace(
            os.environ["TEST_WORKSPACE_ROOT"],
            workflow_instance_id="wf",
            task_id=f"task{assign.dispatch_id}",
            execution_id=assign.execution_id,
            retry_count=0,
            task_def_name="test_task",
            owner_worker_id=WORKER_ID,
            owner_token=uuid.uuid4().hex,
        )
        (attempt.workspace / "output.txt").write_text("work in progress")
        journal.record("attempt_created", worker_id=WORKER_ID, dir=str(attempt.dir))
    if task.get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    fence = None
    if "fence" in task:
        try:
            fence = channel.fence(
                assign.dispatch_id,
                task["fence"].encode(),
                timeout=task.get("fence_timeout"),
            ).decode()
        except TimeoutError as exc:
            fence = f"TimeoutError: {exc}"
    time.sleep(task.get("sleep", 0))
    if attempt is not None:
        _core.remove_attempt_workspace(attempt.dir)
    result = {
        "status": "COMPLETED",
        "outputData": {"slept": task.get("sleep", 0)},
        "signalled": stop_requested,
        "fence": fence,
    }
    channel.complete(
        assign.dispatch_id, assign.execution_id, json.dumps(result).encode()
    )
    journal.record("task_finished", worker_id=WORKER_ID, dispatch_id=assign.dispatch_id)


def main() -> int:
    if MODE == "boot_error":
        sys.stderr.write("Traceback (most recent call last):\n")
        sys.stderr.write("ModuleNotFoundError: No module named 'app_missing'\n")
        return 1
    channel = _core.ExecutorChannel.from_env()
    if MODE == "hang_on_stop":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    channel.ready()
    journal.record(
        "executor_ready",
        worker_id=WORKER_ID,
        generation=GENERATION,
        fd=channel.fileno(),
    )
    crash_at = None if (delay := crash_after()) is None else time.monotonic() + delay
    while not stop_requested:
        timeout = None if crash_at is None else max(0.0, crash_at - time.monotonic())
        message = channel.recv(timeout=timeout)
        if crash_at is not None and time.monotonic() >= crash_at:
            journal.record("executor_crash", worker_id=WORKER_ID, generation=GENERATION)
            return 1
        if message is None:
            if stop_requested:
                return 0
            continue
        if isinstance(message, _core.Stop):
            journal.record("executor_stop", worker_id=WORKER_ID, closed=message.closed)
            if MODE == "hang_on_stop":
                time.sleep(3600)
            return 0
        run_task(channel, message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
