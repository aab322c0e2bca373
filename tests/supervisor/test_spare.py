"""The warm spare executor: promoted into a dead executor's slot (same worker id, next
generation, broker told of the exit first), replaced when it dies, a boot failure when
it cannot start, stopped by the drain, and skipped (cold spawn) when it is not warm."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from supervisor_harness import Runtime, pid_alive


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def test_promoted_spare_takes_the_slots_worker_id_and_runs_its_next_task(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(
        process_count=1, tasks=[{"sleep": 30}, {"sleep": 0}]
    )
    runtime.wait_all_ready(1)
    victim = runtime.wait_event("task_started")[0]
    spare = runtime.wait_log("spare executor warm")[0]
    os.kill(victim["pid"], signal.SIGKILL)

    second = runtime.wait_event("task_finished", dispatch_id=2)[0]
    assert second["worker_id"] == "testWorker0001"
    assert second["pid"] == spare["pid"], "the next task ran in the promoted spare"
    assert runtime.events("task_started", dispatch_id=2)[0]["generation"] == 2
    assert cmdline(spare["pid"]) == "perago executor testWorker0001"
    promoted = runtime.logs("spare executor promoted")
    assert [(r["worker_id"], r["slot"], r["generation"], r["pid"]) for r in promoted] == [
        ("testWorker0001", 1, 2, spare["pid"])
    ]
    ready = [r for r in runtime.logs("worker process ready") if r.get("generation") == 2]
    assert [(r["worker_id"], r["pid"]) for r in ready] == [("testWorker0001", spare["pid"])]
    assert not [
        r for r in runtime.logs("worker process started") if r["generation"] == 2
    ], "no cold spawn when the spare was warm"

    broker_view = [
        (e["event"], e["generation"])
        for e in runtime.events()
        if e.get("slot") == 1 and e["event"] in ("executor_exited", "slot_socket")
    ]
    assert broker_view == [
        ("slot_socket", 1),
        ("executor_exited", 1),
        ("slot_socket", 2),
    ], "the broker hears about the exit before it gets the promoted spare's socket"
    assert runtime.events("task_failed", dispatch_id=1)

    # A new spare boots once the promoted one is ready.
    replacement = runtime.wait_log("spare executor warm", count=2)[1]
    assert replacement["pid"] not in (spare["pid"], victim["pid"])
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_spare_that_cannot_import_stops_the_supervisor_with_its_stderr(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(
        process_count=1, executor_env={"TEST_SPARE_MODE": "boot_error"}
    )
    assert runtime.exit_code() == 3
    text = runtime.stderr_text()
    assert (
        "error: spare executor testWorkerSpare exited before it was warm 3 times in a row"
        " (last: exit code 1)" in text
    )
    assert "    ImportError: cannot import name 'helper' from 'app'" in text
    failure = runtime.logs("spare executor cannot start; stopping process runtime")[0]
    assert failure["consecutive_boot_failures"] == 3
    replaced = runtime.logs("spare executor exited; replacing it")
    assert [round(r["restart_delay_seconds"] / 0.05) for r in replaced] == [1, 2]
    assert runtime.logs("supervisor stopped")[0]["reason"] == "boot-failure"
    assert runtime.events("executor_stop"), "the executors were drained, not abandoned"
    assert not (runtime.root / ".perago-supervisor.lock").exists()


def test_killing_the_idle_spare_is_survived_and_it_is_replaced(start_runtime) -> None:
    runtime: Runtime = start_runtime(process_count=2)
    runtime.wait_all_ready(2)
    first = runtime.wait_log("spare executor warm")[0]
    os.kill(first["pid"], signal.SIGKILL)

    death = runtime.wait_log("spare executor exited; replacing it")[0]
    assert (death["pid"], death["signal"], death["was_warm"]) == (
        first["pid"],
        signal.SIGKILL,
        True,
    )
    assert death["restart_delay_seconds"] == 0.05
    second = runtime.wait_log("spare executor warm", count=2)[1]
    assert second["pid"] != first["pid"]
    assert len(runtime.events("executor_ready")) == 2, "the executors were not disturbed"

    # The replacement is the one promoted next.
    victim = runtime.events("executor_ready", worker_id="testWorker0002")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    back = runtime.wait_event("executor_ready", worker_id="testWorker0002", generation=2)[0]
    assert back["pid"] == second["pid"]
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_drain_stops_the_warm_spare(start_runtime) -> None:
    runtime: Runtime = start_runtime(process_count=1)
    runtime.wait_all_ready(1)
    spare = runtime.wait_log("spare executor warm")[0]
    runtime.send(signal.SIGINT)
    assert runtime.exit_code() == 0
    assert runtime.events("spare_stopped", pid=spare["pid"])
    exited = runtime.logs("spare executor exited")[0]
    assert (exited["pid"], exited["exit_code"]) == (spare["pid"], 0)
    assert not pid_alive(spare["pid"])


def test_drain_kills_a_spare_still_booting_instead_of_waiting_for_it(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(
        process_count=1, executor_env={"TEST_SPARE_MODE": "slow_boot"}
    )
    runtime.wait_all_ready(1)
    booting = runtime.wait_event("spare_booted")[0]
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0
    killed = runtime.logs("killing the spare executor still booting")
    assert [(r["pid"], r["phase"]) for r in killed] == [(booting["pid"], "drain")]
    exited = runtime.logs("spare executor exited")[0]
    assert (exited["signal"], exited["was_warm"]) == (signal.SIGKILL, False)
    assert not pid_alive(booting["pid"])


def test_executor_dying_while_the_spare_boots_is_restarted_cold(start_runtime) -> None:
    runtime: Runtime = start_runtime(
        process_count=1, executor_env={"TEST_SPARE_MODE": "slow_boot"}
    )
    runtime.wait_all_ready(1)
    runtime.wait_event("spare_booted")
    victim = runtime.events("executor_ready")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    runtime.wait_event("executor_ready", worker_id="testWorker0001", generation=2)
    assert not runtime.logs("spare executor promoted"), "never waits for a spare that is not warm"
    assert [r["generation"] for r in runtime.logs("worker process started") if r["role"] == "executor"] == [1, 2]
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_two_executors_dying_together_get_the_spare_and_a_cold_spawn(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(process_count=2)
    runtime.wait_all_ready(2)
    spare = runtime.wait_log("spare executor warm")[0]
    victims = runtime.events("executor_ready")
    for victim in victims:
        os.kill(victim["pid"], signal.SIGKILL)

    for worker in ("testWorker0001", "testWorker0002"):
        runtime.wait_event("executor_ready", worker_id=worker, generation=2)
    promoted = runtime.logs("spare executor promoted")
    cold = [
        r
        for r in runtime.logs("worker process started")
        if r["role"] == "executor" and r["generation"] == 2
    ]
    assert len(promoted) == 1 and promoted[0]["pid"] == spare["pid"]
    assert len(cold) == 1 and cold[0]["restart"] is True
    assert {promoted[0]["worker_id"], cold[0]["worker_id"]} == {
        "testWorker0001",
        "testWorker0002",
    }
    for worker in ("testWorker0001", "testWorker0002"):
        runtime.wait_event("executor_ready_frame", slot=int(worker[-1]), generation=2)
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_without_a_spare_command_restarts_are_cold(start_runtime) -> None:
    runtime: Runtime = start_runtime(process_count=1, spare_command=None)
    runtime.wait_all_ready(1)
    victim = runtime.events("executor_ready")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    runtime.wait_event("executor_ready", worker_id="testWorker0001", generation=2)
    assert not runtime.logs("spare executor started")
    assert [r["generation"] for r in runtime.logs("worker process started") if r["role"] == "executor"] == [1, 2]
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


# --- the real perago.spare and perago.executor, fed by the stand-in broker -------------

PROBE_MODULE = '''
import os
import sys
import time

from pydantic import BaseModel

from perago import task

if os.environ.get("PROBE_SPARE_IMPORT_ERROR") and sys.argv[0].endswith("spare.py"):
    raise ImportError("cannot import name 'helper' from 'probe_helpers'")


class Params(BaseModel):
    seconds: float


class Seen(BaseModel):
    pid: int
    worker_id: str
    slot: str
    generation: str


@task(name="probe.seen", owner_email="runtime-tests@example.com")
def seen(params: Params) -> Seen:
    time.sleep(params.seconds)
    return Seen(
        pid=os.getpid(),
        worker_id=os.environ["PERAGO_WORKER_ID"],
        slot=os.environ["PERAGO_SLOT"],
        generation=os.environ["PERAGO_SLOT_GENERATION"],
    )
'''


def conductor_task(task_id: str, seconds: float) -> dict[str, object]:
    return {
        "taskId": task_id,
        "workflowInstanceId": f"wf-{task_id}",
        "retryCount": 0,
        "taskDefName": "probe.seen",
        "referenceTaskName": "step0",
        "seq": 1,
        "status": "IN_PROGRESS",
        "inputData": {"params": {"seconds": seconds}},
    }


def start_real(start_runtime, tmp_path: Path, **kwargs) -> Runtime:
    (tmp_path / "spare_probe.py").write_text(PROBE_MODULE)
    env = {
        "PYTHONPATH": str(tmp_path),
        "PERAGO_WORKSPACE_ROOT": str(tmp_path / "root"),
        "PERAGO_LOG_ROOT": str(tmp_path / "logs"),
        **kwargs.pop("executor_env", {}),
    }
    return start_runtime(
        executor_env=env,
        executor_command=[sys.executable, "-m", "perago.executor", "spare_probe"],
        spare_command=[sys.executable, "-m", "perago.spare", "spare_probe"],
        **kwargs,
    )


def test_real_spare_is_promoted_with_the_slots_environment_title_and_log_file(
    start_runtime, tmp_path: Path
) -> None:
    runtime = start_real(
        start_runtime,
        tmp_path,
        process_count=1,
        tasks=[conductor_task("long", 30), conductor_task("next", 0)],
    )
    spare = runtime.wait_log("spare executor warm")[0]
    runtime.wait_event("assigned", dispatch_id=1)
    (first,) = [r for r in runtime.logs("worker process ready") if r["role"] == "executor"]
    assert cmdline(spare["pid"]) == "perago spare testWorkerSpare"
    os.kill(first["pid"], signal.SIGKILL)

    result = runtime.wait_event("complete", dispatch_id=2)[0]["result"]
    assert result["status"] == "COMPLETED" and result["taskId"] == "next"
    seen = next(v for v in result["outputData"].values() if isinstance(v, dict))
    assert seen == {
        "pid": spare["pid"],
        "worker_id": "testWorker0001",
        "slot": "1",
        "generation": "2",
    }
    assert cmdline(spare["pid"]) == "perago executor testWorker0001"
    logs = [str(p.relative_to(tmp_path / "logs")) for p in (tmp_path / "logs").rglob("*.jsonl")]
    assert any("testWorker0001" in name and str(spare["pid"]) in name for name in logs), logs
    assert not any("Spare" in name for name in logs), "the spare opens its log only once it has a worker id"
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_real_spare_whose_module_fails_to_import_stops_the_supervisor(
    start_runtime, tmp_path: Path
) -> None:
    runtime = start_real(
        start_runtime,
        tmp_path,
        process_count=1,
        executor_env={"PROBE_SPARE_IMPORT_ERROR": "1"},
    )
    assert runtime.exit_code(timeout=90) == 3
    text = runtime.stderr_text()
    assert "error: spare executor testWorkerSpare exited before it was warm 3 times in a row" in text
    assert "    ImportError: cannot import name 'helper' from 'probe_helpers'" in text
    assert len(runtime.logs("worker process ready")) == 2, "broker and executor were up"
