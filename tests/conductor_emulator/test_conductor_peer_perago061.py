"""The upstream perago 0.6.1 — the peer perago is measured against — runs a workspace-free
task module unchanged on the emulator and completes 200 workflows.

The peer lives in its own cached venv, `.peers/perago061`, built by `make peers` (which
`make test` runs); this test builds it the same way when it is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conductor_rest import Api

from perago.testing.conductor import ConductorEmulator

REPO = Path(__file__).resolve().parents[2]
PEER_PERAGO = REPO / ".peers" / "perago061" / "bin" / "perago"
MODULE_DIR = Path(__file__).parent / "peers"
WORKFLOWS = 200


def _peer_perago() -> Path:
    if not PEER_PERAGO.exists():
        subprocess.run(["make", "-C", str(REPO), "peers"], check=True, timeout=600)
    return PEER_PERAGO


@pytest.mark.timeout(600)
def test_perago_061_completes_200_workflows(tmp_path: Path) -> None:
    perago = _peer_perago()
    shutil.copy(MODULE_DIR / "peer_add_one.py", tmp_path / "peer_add_one.py")
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PERAGO_WORKSPACE_ROOT": str(tmp_path / "workspaces"),
        "PERAGO_LOG_ROOT": str(tmp_path / "logs"),
    }
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [str(perago), "extract", "peer_add_one", "-o", str(tmp_path / "taskdef.json")], check=True, env=env, cwd=tmp_path
    )
    taskdef = json.loads((tmp_path / "taskdef.json").read_text())
    with ConductorEmulator() as conductor:
        api = Api(conductor.url)
        assert api.register_taskdefs(taskdef).status_code == 200
        tasks = [{"name": "peer_add_one", "taskReferenceName": "add", "inputParameters": {"params": "${workflow.input.params}"}}]
        assert (
            api.register_workflow("peer_wf", tasks, outputParameters={"value": "${add.output.result.value}"}).status_code == 200
        )
        ids = [api.start("peer_wf", {"params": {"value": index}}) for index in range(WORKFLOWS)]
        env["CONDUCTOR_SERVER_URL"] = conductor.url
        log = (tmp_path / "perago-start.log").open("wb")
        supervisor = subprocess.Popen(
            [str(perago), "start", "peer_add_one", "-j", "1"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            pending = set(ids)
            deadline = time.monotonic() + 300
            while pending and time.monotonic() < deadline and supervisor.poll() is None:
                time.sleep(0.5)
                pending = {workflow_id for workflow_id in pending if api.workflow(workflow_id)["status"] == "RUNNING"}
        finally:
            if supervisor.poll() is None:
                os.killpg(supervisor.pid, signal.SIGTERM)
                try:
                    supervisor.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(supervisor.pid, signal.SIGKILL)
                    supervisor.wait()
            log.close()
        workflows = [api.workflow(workflow_id) for workflow_id in ids]
        api.close()
    said = (tmp_path / "perago-start.log").read_text(errors="replace")[-3000:]
    assert not pending, f"perago 0.6.1 left {len(pending)} of {WORKFLOWS} workflows running; it said:\n{said}"
    assert [workflow["status"] for workflow in workflows] == ["COMPLETED"] * WORKFLOWS, said
    assert [workflow["output"] for workflow in workflows] == [{"value": index + 1} for index in range(WORKFLOWS)]
