"""Drain: in-flight tasks finish, one global force-kill deadline, second SIGINT stops now,
and a SIGKILLed supervisor takes every child, the warm spare included, with it."""

from __future__ import annotations

import os
import select
import signal
from datetime import datetime

import pytest
from supervisor_harness import Runtime, pid_alive


def child_pids(runtime: Runtime) -> list[int]:
    return (
        [e["pid"] for e in runtime.events("executor_ready")]
        + [e["pid"] for e in runtime.events("broker_ready")]
        + [e["pid"] for e in runtime.events("spare_booted")]
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_with_a_task_in_flight_lets_it_finish(
    start_runtime, signum: int
) -> None:
    runtime: Runtime = start_runtime(process_count=2, tasks=[{"sleep": 1.5}])
    runtime.wait_all_ready(2)
    started = runtime.wait_event("task_started")[0]
    runtime.send(signum)
    assert runtime.exit_code() == 0
    events = [e["event"] for e in runtime.events()]
    assert "complete" in events
    assert (
        events.index("drain")
        < events.index("complete")
        < events.index("broker_drained")
    )
    complete = runtime.events("complete")[0]
    assert complete["dispatch_id"] == started["dispatch_id"]
    assert complete["result"]["status"] == "COMPLETED"
    assert not runtime.events("task_failed")
    assert not runtime.logs(
        "force-killing worker process after shutdown drain deadline"
    )


def test_executor_signalled_directly_finishes_its_task_first(start_runtime) -> None:
    # Ctrl-C reaches the whole process group: the busy executor only sets a flag.
    runtime: Runtime = start_runtime(process_count=1, tasks=[{"sleep": 1.0}])
    runtime.wait_event("task_started")
    executor = runtime.events("executor_ready")[0]["pid"]
    os.kill(executor, signal.SIGTERM)
    complete = runtime.wait_event("complete")[0]
    assert complete["result"]["signalled"] is True
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_force_kill_deadline_is_one_global_deadline(start_runtime) -> None:
    runtime: Runtime = start_runtime(
        process_count=3,
        executor_env={"TEST_EXECUTOR_MODE": "hang_on_stop"},
        force_kill_after=1.0,
    )
    runtime.wait_all_ready(3)
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0
    kills = runtime.logs("force-killing worker process after shutdown drain deadline")
    assert sorted(k["worker_id"] for k in kills) == [
        "testWorker0001",
        "testWorker0002",
        "testWorker0003",
    ]
    assert {k["phase"] for k in kills} == {"shutdown-force-kill"}
    assert {k["deadline_seconds"] for k in kills} == {1.0}
    assert all(k["pid"] for k in kills)
    # Sequential per-child deadlines would space these by the deadline; one global one fires them together.
    times = [datetime.fromisoformat(k["time"]) for k in kills]
    assert (max(times) - min(times)).total_seconds() < 0.5
    exits = runtime.logs("worker process exited")
    assert sorted(e["signal"] for e in exits) == [signal.SIGKILL] * 3


def test_second_sigint_stops_now(start_runtime) -> None:
    runtime: Runtime = start_runtime(
        process_count=2, executor_env={"TEST_EXECUTOR_MODE": "hang_on_stop"}
    )
    runtime.wait_all_ready(2)
    runtime.send(signal.SIGINT)
    runtime.wait_log("draining process runtime")
    runtime.wait_event("executor_stop", count=2)
    runtime.send(signal.SIGINT)
    assert runtime.exit_code() == 130
    assert runtime.logs("second SIGINT: stopping now")
    for pid in child_pids(runtime):
        assert not pid_alive(pid)


def test_sigkilled_supervisor_leaves_no_child_behind(start_runtime) -> None:
    runtime: Runtime = start_runtime(process_count=3, tasks=[{"sleep": 30}])
    runtime.wait_all_ready(3)
    runtime.wait_event("task_started")
    runtime.wait_log("spare executor warm")
    # pidfds, not pids: the pid numbers may be reused by the time we look.
    pidfds = [os.pidfd_open(pid) for pid in child_pids(runtime)]
    assert len(pidfds) == 5, "broker, three executors and the warm spare"
    try:
        runtime.send(signal.SIGKILL)
        runtime.process.wait()
        poller = select.poll()
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        runtime.wait_until(
            "every child to die with the supervisor",
            lambda: len(poller.poll(0)) == len(pidfds),
            timeout=10,
            while_running=False,
        )
    finally:
        for fd in pidfds:
            os.close(fd)


def test_executor_signalled_during_boot_runs_its_handler_instead_of_dying(
    start_runtime,
) -> None:
    # Children start with SIGINT/SIGTERM blocked until their handlers are installed (W12):
    # a Ctrl-C during boot is held, then handled — never a death by signal.
    runtime: Runtime = start_runtime(process_count=1)
    executor = runtime.wait_until(
        "the executor to be spawned",
        lambda: [
            r for r in runtime.logs("worker process started") if r["role"] == "executor"
        ],
    )[0]
    os.kill(executor["pid"], signal.SIGINT)  # still importing Python at this point
    runtime.wait_event("executor_signal", signal=signal.SIGINT)
    # It stopped because it was asked to: a clean exit, restarted without climbing the backoff.
    clean = runtime.wait_log("worker process exited cleanly; restarting")[0]
    assert (clean["pid"], clean["exit_code"], clean["signal"]) == (
        executor["pid"],
        0,
        None,
    )
    runtime.wait_event("executor_ready", generation=2)
    assert not runtime.logs("worker process exited; restarting")
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0
