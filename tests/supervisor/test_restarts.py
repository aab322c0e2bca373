"""Executor deaths: same worker id back after the backoff, broker told first, crash-loop
backoff that resets after a healthy run, boot failures and broker death stop non-zero."""

from __future__ import annotations

import os
import signal

from supervisor_harness import Runtime, pid_alive


def test_sigkilled_executor_comes_back_with_same_worker_id_after_broker_was_told(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(process_count=2)
    runtime.wait_all_ready(2)
    victim = runtime.events("executor_ready", worker_id="testWorker0001")[0]
    os.kill(victim["pid"], signal.SIGKILL)

    replacement = runtime.wait_event(
        "executor_ready", worker_id="testWorker0001", generation=2
    )[0]
    assert replacement["pid"] != victim["pid"]
    broker_view = [
        e
        for e in runtime.events()
        if e.get("slot") == 1 and e["event"] in ("executor_exited", "slot_socket")
    ]
    assert [(e["event"], e["generation"]) for e in broker_view] == [
        ("slot_socket", 1),
        ("executor_exited", 1),
        ("slot_socket", 2),
    ], "the broker hears about the exit before it gets the replacement's socket"
    assert (
        broker_view[1]["signal"] == signal.SIGKILL
        and broker_view[1]["exit_code"] is None
    )
    restart = runtime.wait_log("worker process exited; restarting")[0]
    assert restart["worker_id"] == "testWorker0001"
    assert restart["signal"] == signal.SIGKILL
    assert restart["restart_delay_seconds"] == 0.05
    assert "out of memory" in restart["hint"]
    runtime.wait_event("executor_ready_frame", slot=1, generation=2)
    # The other slot was never disturbed.
    assert len(runtime.events("executor_ready", worker_id="testWorker0002")) == 1

    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_crash_loop_backs_off_1_2_4_and_resets_after_a_healthy_run(
    start_runtime,
) -> None:
    # Generations 1-3 crash at once, 4 runs past the healthy threshold, 5 crashes at once.
    runtime: Runtime = start_runtime(
        process_count=1,
        executor_env={"TEST_CRASH_PLAN": "0,0,0,3,0"},
        backoff_unit=0.02,
        healthy_after=2.0,
    )
    restarts = runtime.wait_log("worker process exited; restarting", count=5)
    delays = [round(r["restart_delay_seconds"] / 0.02) for r in restarts[:5]]
    assert delays == [1, 2, 4, 1, 2]
    assert [r["generation"] for r in restarts[:5]] == [1, 2, 3, 4, 5]
    assert all(r["exit_code"] == 1 and r["was_ready"] for r in restarts[:5])
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_executor_that_never_boots_stops_the_supervisor_with_its_stderr(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(
        process_count=1, executor_env={"TEST_EXECUTOR_MODE": "boot_error"}
    )
    assert runtime.exit_code() == 3
    text = runtime.stderr_text()
    assert (
        "error: executor testWorker0001 exited before it was ready 3 times in a row (last: exit code 1)"
        in text
    )
    assert "    ModuleNotFoundError: No module named 'app_missing'" in text
    failure = runtime.logs("executor cannot start; stopping process runtime")[0]
    assert failure["consecutive_boot_failures"] == 3
    assert (
        failure["stderr_tail"][-1]
        == "ModuleNotFoundError: No module named 'app_missing'"
    )
    assert runtime.logs("supervisor stopped")[0]["reason"] == "boot-failure"
    assert not (runtime.root / ".perago-supervisor.lock").exists()


def test_broker_that_never_boots_stops_the_supervisor_non_zero(start_runtime) -> None:
    runtime: Runtime = start_runtime(
        process_count=1, executor_env={"TEST_BROKER_MODE": "boot_error"}
    )
    assert runtime.exit_code() == 3
    text = runtime.stderr_text()
    assert (
        "error: broker testWorkerBroker exited before it was ready (exit code 1)"
        in text
    )
    assert "CONDUCTOR_SERVER_URL is required for perago start" in text


def test_broker_death_never_exits_zero_and_takes_the_executors_down(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(
        process_count=2, executor_env={"TEST_BROKER_MODE": "exit_after_ready"}
    )
    assert runtime.exit_code() == 4
    assert (
        "error: broker testWorkerBroker exited while running (exit code 1)"
        in runtime.stderr_text()
    )
    assert runtime.logs("broker process exited; stopping process runtime")
    # Executors saw their slot sockets close when the broker died and exited by themselves.
    stops = runtime.events("executor_stop")
    assert len(stops) == 2 and all(e["closed"] for e in stops)
    for event in runtime.events("executor_ready"):
        assert not pid_alive(event["pid"])
