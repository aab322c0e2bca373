"""Process mode end to end: the Rust supervisor, `perago.broker` and `perago.executor` on the emulator."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perago.conductor import conductor_worker_id
from perago.testing.conductor import ConductorEmulator, FaultPlan, FaultRule

from .conductor_admin import ConductorAdmin
from .worker_process import child_pids, start_worker, stop_worker, wait_for_in_progress


@pytest.fixture
def conductor() -> Iterator[tuple[ConductorEmulator, FaultPlan]]:
    faults = FaultPlan(seed=13)
    with ConductorEmulator(faults=faults) as emulator:
        yield emulator, faults


def test_workflows_complete_and_bad_input_fails_only_its_task(
    conductor: tuple[ConductorEmulator, FaultPlan], tmp_path: Path
) -> None:
    emulator, _ = conductor
    admin = ConductorAdmin(emulator.url)
    flow = admin.setup_single_task_workflow("runtime.echo")
    inputs: list[Any] = [{"text": f"w{index}", "count": index} for index in range(60)]
    inputs[7] = {"text": "bad", "count": "hunter2"}
    inputs[23] = {"text": "fail", "count": 1}
    workflow_ids = [admin.start(flow, params) for params in inputs]
    worker = start_worker(emulator.url, tmp_path, "runtime.workers.echo", mode="process", processes=3)
    try:
        workflows = admin.wait_for_workflows(workflow_ids, timeout=90)
        (after,) = admin.wait_for_workflows([admin.start(flow, {"text": "after", "count": 4})])
    finally:
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    statuses = [w["status"] for w in workflows]
    assert statuses.count("COMPLETED") == 58 and statuses[7] == statuses[23] == "FAILED"
    for index, workflow in enumerate(workflows):
        if index not in (7, 23):
            assert workflow["output"]["result"] == {"text": f"w{index}", "doubled": 2 * index}
    bad = workflows[7]["tasks"][0]
    assert "count" in bad["reasonForIncompletion"] and "hunter2" not in bad["reasonForIncompletion"]
    assert bad["workerId"] == conductor_worker_id("runtimeworkersecho")
    assert after["output"]["result"] == {"text": "after", "doubled": 8}


def test_a_killed_executor_fails_its_task_at_once_and_conductor_retries_it(
    conductor: tuple[ConductorEmulator, FaultPlan], tmp_path: Path
) -> None:
    emulator, _ = conductor
    admin = ConductorAdmin(emulator.url)
    flow = admin.setup_single_task_workflow(
        "runtime.sleepy", responseTimeoutSeconds=600, retryCount=2, retryDelaySeconds=0
    )
    workflow_ids = [admin.start(flow, {"seconds": 2, "tag": f"t{index}"}) for index in range(3)]
    worker = start_worker(emulator.url, tmp_path, "runtime.workers.sleepy", mode="process", processes=2)
    try:
        wait_for_in_progress(admin, workflow_ids, 2)
        victim = child_pids(worker.pid, "perago executor")[0]
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        workflows = admin.wait_for_workflows(workflow_ids, timeout=90)
    finally:
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    assert [w["status"] for w in workflows] == ["COMPLETED"] * 3
    failed = [t for w in workflows for t in w["tasks"] if t["status"] == "FAILED"]
    assert len(failed) == 1
    assert "exited (killed by signal 9) while running task" in failed[0]["reasonForIncompletion"]
    # Reported by the broker as soon as the supervisor saw the death, not at the 600 s response timeout.
    assert failed[0]["endTime"] / 1000 - killed_at < 10


def test_a_task_calling_os_exit_fails_promptly(conductor: tuple[ConductorEmulator, FaultPlan], tmp_path: Path) -> None:
    emulator, _ = conductor
    admin = ConductorAdmin(emulator.url)
    flow = admin.setup_single_task_workflow("runtime.echo", responseTimeoutSeconds=3600)
    worker = start_worker(emulator.url, tmp_path, "runtime.workers.echo", mode="process", processes=1)
    try:
        (doomed,) = admin.wait_for_workflows([admin.start(flow, {"text": "os_exit", "count": 1})], timeout=60)
        (fine,) = admin.wait_for_workflows([admin.start(flow, {"text": "next", "count": 2})], timeout=60)
    finally:
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    task = doomed["tasks"][0]
    assert doomed["status"] == "FAILED" and task["status"] == "FAILED"
    assert "runtimeworkersecho0001 exited (exit code 7)" in task["reasonForIncompletion"]
    assert task["endTime"] - task["startTime"] < 30_000
    assert fine["status"] == "COMPLETED"


def test_a_result_written_before_the_executor_is_killed_counts(
    conductor: tuple[ConductorEmulator, FaultPlan], tmp_path: Path
) -> None:
    emulator, _ = conductor
    admin = ConductorAdmin(emulator.url)
    # The next task may reach the executor in the moment before it dies; Conductor retries that one.
    flow = admin.setup_single_task_workflow(
        "runtime.echo", responseTimeoutSeconds=600, retryCount=2, retryDelaySeconds=0
    )
    worker = start_worker(emulator.url, tmp_path, "runtime.workers.echo", mode="process", processes=1)
    try:
        (workflow,) = admin.wait_for_workflows(
            [admin.start(flow, {"text": "killed_after_return", "count": 2})], timeout=60
        )
        (later,) = admin.wait_for_workflows([admin.start(flow, {"text": "later", "count": 1})], timeout=60)
    finally:
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    assert workflow["status"] == "COMPLETED" and len(workflow["tasks"]) == 1
    assert workflow["output"]["result"] == {"text": "killed_after_return", "doubled": 4}
    assert later["status"] == "COMPLETED"


def test_conductor_errors_and_dropped_connections_are_survived(
    conductor: tuple[ConductorEmulator, FaultPlan], tmp_path: Path
) -> None:
    emulator, faults = conductor
    admin = ConductorAdmin(emulator.url)
    flow = admin.setup_single_task_workflow("runtime.echo", responseTimeoutSeconds=600)
    workflow_ids = [admin.start(flow, {"text": f"w{index}", "count": index}) for index in range(24)]
    faults.rules.extend(
        [
            FaultRule(endpoint="update_v2", error_rate=0.2, drop_before_rate=0.2),
            FaultRule(endpoint="batch_poll", error_rate=0.1, drop_before_rate=0.1),
        ]
    )
    worker = start_worker(emulator.url, tmp_path, "runtime.workers.echo", mode="process", processes=2)
    try:
        workflows = admin.wait_for_workflows(workflow_ids, timeout=120)
    finally:
        faults.rules.clear()
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    assert [w["output"]["result"]["doubled"] for w in workflows] == [2 * index for index in range(24)]
    logs = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*.jsonl"))
    assert "task result undeliverable" not in logs
    assert "task result update failed; retrying" in logs


def test_a_server_without_update_v2_gets_every_result_through_the_plain_update(tmp_path: Path) -> None:
    """The dispatcher's relay tries update-v2 first; the refusal goes to the broker's client,
    which falls back to POST /tasks for good and stops the relay (conductor-api.md §10)."""
    with ConductorEmulator(in_process=True, update_v2_status=405) as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.echo", responseTimeoutSeconds=600)
        workflow_ids = [admin.start(flow, {"text": f"w{index}", "count": index}) for index in range(12)]
        worker = start_worker(emulator.url, tmp_path, "runtime.workers.echo", mode="process", processes=2)
        try:
            workflows = admin.wait_for_workflows(workflow_ids, timeout=120)
        finally:
            exit_code, stderr = stop_worker(worker, signal.SIGTERM)
        counts = emulator.request_counts()
    assert exit_code == 0, stderr
    assert [w["output"]["result"]["doubled"] for w in workflows] == [2 * index for index in range(12)]
    # At most one refused update-v2 per slot that was relaying when the first refusal came back.
    assert counts.get("update_v2", 0) <= 2 * 2
    assert counts["update"] >= 12
    logs = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*.jsonl"))
    assert sum("Conductor has no update-v2 endpoint" in line for line in logs.splitlines()) == 1
    assert "task result undeliverable" not in logs
