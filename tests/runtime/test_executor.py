"""`python -m perago.executor` under the real Rust supervisor, fed by a stand-in broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from perago.conductor import conductor_worker_id
from perago.executor import Executor
from perago.fence_rpc import FenceReloadError, decode_request, encode_error

TESTS_DIR = Path(__file__).resolve().parents[1]
BROKER = Path(__file__).resolve().parent / "children" / "recording_broker.py"

SUPERVISE = """
import json, sys
from datetime import timedelta
from perago.supervisor import SupervisorSettings, report_outcome, supervise
raw = json.loads(sys.argv[1])
raw["backoff_unit"] = timedelta(seconds=0.05)
sys.exit(report_outcome(supervise(SupervisorSettings(**raw))))
"""


def conductor_task(task_id: str, params: Any) -> dict[str, Any]:
    return {
        "taskId": task_id,
        "workflowInstanceId": f"wf-{task_id}",
        "retryCount": 0,
        "taskDefName": "runtime.echo",
        "referenceTaskName": "step0",
        "seq": 1,
        "status": "IN_PROGRESS",
        "inputData": {"params": params},
    }


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_executors_run_attempts_and_return_task_result_json(tmp_path: Path) -> None:
    tasks = [
        conductor_task("ok-1", {"text": "a", "count": 1}),
        conductor_task("bad", {"text": "b", "count": "hunter2"}),
        conductor_task("exit", {"text": "exit", "count": 1}),
        conductor_task("fail", {"text": "fail", "count": 1}),
        conductor_task("ok-2", {"text": "c", "count": 3}),
    ]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    results_file = tmp_path / "results.jsonl"
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("PERAGO_", "CONDUCTOR_", "LAKECTL_"))
    }
    env.update(
        PYTHONPATH=str(TESTS_DIR),
        PERAGO_WORKSPACE_ROOT=str(tmp_path / "workspaces"),
        PERAGO_LOG_ROOT=str(tmp_path / "logs"),
        TEST_TASKS_FILE=str(tmp_path / "tasks.json"),
        TEST_RESULTS_FILE=str(results_file),
    )
    settings = {
        "workspace_root": str(tmp_path / "workspaces"),
        "worker_id_prefix": "echo",
        "process_count": 2,
        "broker_command": [sys.executable, str(BROKER)],
        "executor_command": [sys.executable, "-m", "perago.executor", "runtime.workers.echo"],
        "env": env,
    }
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISE, json.dumps(settings)], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while len(read_results(results_file)) < len(tasks):
            assert supervisor.poll() is None, supervisor.communicate()[1].decode()
            assert time.monotonic() < deadline, read_results(results_file)
            time.sleep(0.05)
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.communicate()
    assert supervisor.returncode == 0, stderr.decode()

    outcomes = {
        (entry["result"]["taskId"] if entry["kind"] == "complete" else "exit"): entry
        for entry in read_results(results_file)
    }
    assert outcomes["exit"]["kind"] == "executor_exited" and outcomes["exit"]["exit_code"] == 3
    completes = [entry for entry in outcomes.values() if entry["kind"] == "complete"]
    assert all(entry["matches"] for entry in completes)
    results = {entry["result"]["taskId"]: entry["result"] for entry in completes}
    assert results["ok-1"] == {
        "workflowInstanceId": "wf-ok-1",
        "taskId": "ok-1",
        "workerId": conductor_worker_id("echo"),
        "status": "COMPLETED",
        "outputData": {"result": {"text": "a", "doubled": 2}},
        "extendLease": False,
    }
    assert results["ok-2"]["outputData"] == {"result": {"text": "c", "doubled": 6}}
    assert results["fail"]["status"] == "FAILED" and results["fail"]["reasonForIncompletion"] == "asked to fail"
    bad_reason = results["bad"]["reasonForIncompletion"]
    assert "count" in bad_reason and "hunter2" not in bad_reason
    logs = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*.jsonl"))
    assert "process executor started" in logs and "worker_id=echo0001" in str(list((tmp_path / "logs").rglob("*")))


class FakeChannel:
    """Stands in for `_core.ExecutorChannel` where only the fence RPC matters."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[tuple[int, str]] = []

    def fence(self, dispatch_id: int, request: bytes, timeout: float | None = None) -> bytes:
        self.requests.append((dispatch_id, decode_request(request)))
        return self.reply


def test_the_fence_reload_goes_to_the_broker_for_the_current_dispatch() -> None:
    task = conductor_task("t-9", {})
    channel = FakeChannel(json.dumps(task).encode())
    executor = Executor(channel, "echoBroker@host")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="outside an assignment"):
        executor.reload_task("t-9")
    executor.dispatch_id = 7
    assert executor.reload_task("t-9") == task
    assert channel.requests == [(7, "t-9")]
    channel.reply = encode_error("HTTP 503 from Conductor")
    with pytest.raises(FenceReloadError, match="broker failed to reload attempt t-9: HTTP 503 from Conductor"):
        executor.reload_task("t-9")
