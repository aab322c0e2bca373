"""SIGTERM on a busy `perago start`, in both execution modes: every in-flight task is reported."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from perago.testing.conductor import ConductorEmulator

from .conductor_admin import ConductorAdmin
from .worker_process import start_worker, stop_worker, wait_for_in_progress


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_sigterm_drains_every_in_flight_task_with_leases_kept(tmp_path: Path, mode: str) -> None:
    with ConductorEmulator() as emulator:
        admin = ConductorAdmin(emulator.url)
        # Tasks run 4 s against a 3 s response timeout: they only survive if heartbeats
        # continue during the drain (W4).
        flow = admin.setup_single_task_workflow("runtime.sleepy", responseTimeoutSeconds=3)
        workflow_ids = [admin.start(flow, {"seconds": 4, "tag": f"t{index}"}) for index in range(6)]
        worker = start_worker(emulator.url, tmp_path, "runtime.workers.sleepy", mode=mode)
        running = wait_for_in_progress(admin, workflow_ids, 3)
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
        assert exit_code == 0, stderr
        statuses = {wid: admin.workflow(wid) for wid in workflow_ids}
        assert {wid for wid, w in statuses.items() if w["status"] == "COMPLETED"} == set(running)
        for wid in set(workflow_ids) - set(running):
            assert statuses[wid]["status"] == "RUNNING"
            assert statuses[wid]["tasks"][0]["status"] == "SCHEDULED"
        logs = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*.jsonl"))
        started = "thread runner started" if mode == "thread" else "process broker started"
        drained = "thread runner drained" if mode == "thread" else "process broker drained"
        assert started in logs and drained in logs


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_drain_deadline_reports_unfinished_tasks_as_failed(tmp_path: Path, mode: str) -> None:
    with ConductorEmulator() as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.sleepy", responseTimeoutSeconds=600)
        workflow_ids = [admin.start(flow, {"seconds": 60, "tag": f"t{index}"}) for index in range(3)]
        worker = start_worker(
            emulator.url, tmp_path, "runtime.workers.sleepy", mode=mode, PERAGO_SHUTDOWN_FORCE_KILL_AFTER="2s"
        )
        running = wait_for_in_progress(admin, workflow_ids, 3)
        signalled = time.monotonic()
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
        assert time.monotonic() - signalled < 30
        if mode == "thread":
            assert exit_code == 0, stderr
        for wid in running:
            task = admin.workflow(wid)["tasks"][0]
            assert task["status"] == "FAILED", (task["status"], stderr)
            assert "shutdown drain deadline of 2s passed" in task["reasonForIncompletion"]


def test_a_second_signal_ends_the_thread_mode_drain_and_reports_the_rest(tmp_path: Path) -> None:
    with ConductorEmulator() as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.sleepy", responseTimeoutSeconds=600)
        workflow_ids = [admin.start(flow, {"seconds": 60, "tag": f"t{index}"}) for index in range(2)]
        worker = start_worker(emulator.url, tmp_path, "runtime.workers.sleepy", mode="thread", processes=2)
        running = wait_for_in_progress(admin, workflow_ids, 2)
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        exit_code, stderr = stop_worker(worker, signal.SIGTERM)
        assert exit_code == 0, stderr
        for wid in running:
            task = admin.workflow(wid)["tasks"][0]
            assert task["status"] == "FAILED"
            assert "a second stop signal arrived during the drain" in task["reasonForIncompletion"]
