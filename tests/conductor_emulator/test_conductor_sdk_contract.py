"""Spec conductor-api.md §12 item 31: the official conductor-python SDK as a client.

A real `TaskHandler` (its default process isolation, in a child process) completes
3-step chains, once against the modern (3.32) profile, where it uses update-v2, and once
against a server whose update-v2 route answers 404, where it must fall back to v1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ConductorEmulator

WORKER_SCRIPT = Path(__file__).parent / "peers" / "sdk_worker.py"
TYPES = ("sdk_a", "sdk_b", "sdk_c")


def _register_chain(api: Api) -> None:
    api.register_taskdefs(*(fast_taskdef(task_type) for task_type in TYPES))
    tasks = [
        {"name": TYPES[0], "taskReferenceName": "a", "inputParameters": {"value": "${workflow.input.value}"}},
        {"name": TYPES[1], "taskReferenceName": "b", "inputParameters": {"value": "${a.output.value}"}},
        {"name": TYPES[2], "taskReferenceName": "c", "inputParameters": {"value": "${b.output.value}"}},
    ]
    assert api.register_workflow("sdk_chain", tasks, outputParameters={"result": "${c.output.value}"}).status_code == 200


def _run_sdk_workers_until_done(conductor: ConductorEmulator, workflows: int, log_path: Path) -> list[dict]:
    api = Api(conductor.url)
    _register_chain(api)
    ids = [api.start("sdk_chain", {"value": index}) for index in range(workflows)]
    env = {**os.environ, "CONDUCTOR_SERVER_URL": conductor.url}
    with log_path.open("wb") as log:  # a file, not a pipe: a chatty SDK must never block on a full pipe
        worker = subprocess.Popen([sys.executable, str(WORKER_SCRIPT), *TYPES], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            pending = set(ids)
            while pending and time.monotonic() < deadline and worker.poll() is None:
                pending = {workflow_id for workflow_id in pending if api.workflow(workflow_id)["status"] == "RUNNING"}
                time.sleep(0.2)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    finished = [api.workflow(workflow_id) for workflow_id in ids]
    api.close()
    said = log_path.read_text(errors="replace")[-3000:]
    assert not pending, f"SDK workers left {len(pending)} workflows running; worker said:\n{said}"
    return finished


@pytest.mark.parametrize("profile", ["modern", "v2-route-missing"])
def test_sdk_task_handler_completes_chains(profile: str, tmp_path: Path) -> None:
    settings = {} if profile == "modern" else {"update_v2_status": 404}
    with ConductorEmulator(**settings) as conductor:
        workflows = _run_sdk_workers_until_done(conductor, 5, tmp_path / "sdk-worker.log")
        counts = conductor.request_counts()
    assert [workflow["status"] for workflow in workflows] == ["COMPLETED"] * 5
    assert [workflow["output"] for workflow in workflows] == [{"result": index + 3} for index in range(5)]
    assert counts["batch_poll"] > 0
    if profile == "modern":
        assert counts["update_v2"] >= 15
    else:
        assert counts["update"] >= 15  # every result re-sent through v1 after the 404
