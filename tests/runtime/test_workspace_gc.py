"""Thread-mode attempt-workspace GC: abandoned directories go, this process's own stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from perago import _core
from perago.runners.workspace_gc import WorkspaceGcThread, sweep_abandoned


def create(root: Path, task_id: str, worker_id: str) -> Path:
    return Path(
        _core.create_attempt_workspace(
            root,
            workflow_instance_id="wf",
            task_id=task_id,
            execution_id="e" * 32,
            retry_count=0,
            task_def_name="runtime.notes",
            owner_worker_id=worker_id,
            owner_token="t" * 32,
        ).dir
    )


def create_in_dead_process(root: Path, task_id: str) -> None:
    code = (
        "import sys; from perago import _core; "
        "_core.create_attempt_workspace(sys.argv[1], workflow_instance_id='wf', task_id=sys.argv[2], "
        "execution_id='f' * 32, retry_count=0, task_def_name='x', owner_worker_id='goneBroker', owner_token='u' * 32)"
    )
    subprocess.run([sys.executable, "-c", code, str(root), task_id], check=True)


def test_the_periodic_pass_spares_this_process_and_the_sweep_does_not(tmp_path: Path) -> None:
    mine = create(tmp_path, "mine", "notesBroker")
    create_in_dead_process(tmp_path, "orphan")
    gc = WorkspaceGcThread(tmp_path, worker_id="notesBroker", ttl_seconds=0, interval_seconds=3600)
    assert gc.run_once() == 1
    assert [path.name for path in tmp_path.iterdir()] == [mine.name]
    assert sweep_abandoned(tmp_path, when="after shutdown") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_gc_thread_runs_its_first_pass_at_once(tmp_path: Path) -> None:
    create_in_dead_process(tmp_path, "orphan")
    gc = WorkspaceGcThread(tmp_path, worker_id="notesBroker", ttl_seconds=0, interval_seconds=3600).start()
    gc.stop()
    assert list(tmp_path.iterdir()) == []
