"""`perago start` with a workspace task, in both execution modes, on both emulators.

Writable workspace tasks run the attempt fence before publishing: in thread mode
through the runner's own Conductor client, in process mode over the executor's slot
socket to the broker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lakefs_sdk
import pytest

from perago.testing.conductor import ConductorEmulator
from perago.testing.lakefs import LakeFSEmulator

from .conductor_admin import ConductorAdmin
from .notes_repository import create_notes_repository

TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_workspace_task_publishes_its_change_and_reports_the_new_ref(tmp_path: Path, mode: str) -> None:
    with LakeFSEmulator() as lakefs, ConductorEmulator() as conductor:
        sdk, workspace = create_notes_repository(lakefs)
        admin = ConductorAdmin(conductor.url)
        flow = admin.setup_single_task_workflow("runtime.notes")
        workflow_id = admin.start(flow, {"name": "hello", "text": "hi there"}, workspace=workspace)
        environment = {
            **os.environ,
            "PYTHONPATH": str(TESTS_DIR),
            "CONDUCTOR_SERVER_URL": conductor.url,
            "LAKECTL_SERVER_ENDPOINT_URL": lakefs.url,
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": lakefs.access_key_id,
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": lakefs.secret_access_key,
            "PERAGO_WORKSPACE_ROOT": str(tmp_path / "workspaces"),
            "PERAGO_LOG_ROOT": str(tmp_path / "logs"),
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "perago.cli", "start", "runtime.workers.notes", "-j", "2", "--execution-mode", mode],
            cwd=tmp_path,
            env=environment,
            stderr=subprocess.PIPE,
        )
        try:
            (workflow,) = admin.wait_for_workflows([workflow_id], timeout=60)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=30)
        assert worker.returncode == 0, stderr.decode()
        assert workflow["status"] == "COMPLETED", workflow.get("reasonForIncompletion")
        head = lakefs_sdk.BranchesApi(sdk).get_branch("notes-repo", "main").commit_id
        assert head != workspace["ref"]
        assert workflow["output"]["workspace"] == {**workspace, "ref": head}
        assert workflow["output"]["result"] == {"files": 1}
        note = lakefs_sdk.ObjectsApi(sdk).get_object("notes-repo", head, "notes/hello.txt")
        assert bytes(note) == b"hi there"
        assert not list((tmp_path / "workspaces").glob("task_id=*")), "attempt directories are removed"
