"""The workspace-root lock held for the supervisor's life, and attempt-workspace GC:
startup sweep, periodic GC around live owners, targeted GC of dead executors, final sweep."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from perago import _core
from supervisor_harness import Runtime


def attempt_dirs(root: Path) -> list[str]:
    return (
        sorted(p.name for p in root.iterdir() if p.name.startswith("task_id="))
        if root.exists()
        else []
    )


def test_second_supervisor_is_refused_and_the_first_ones_death_frees_the_root(
    start_runtime, tmp_path: Path
) -> None:
    first: Runtime = start_runtime(process_count=1, name="first")
    first.wait_all_ready(1)
    second: Runtime = start_runtime(process_count=1, name="second")
    assert second.exit_code() == 1
    lines = second.stderr_text().splitlines()
    assert lines == [
        (
            f"error: workspace root {first.root} is already locked by supervisor pid {first.process.pid}; "
            "use a different PERAGO_WORKSPACE_ROOT for each supervisor"
        )
    ]
    assert not second.events("executor_ready"), "the refused supervisor spawned nothing"

    first.send(signal.SIGKILL)
    first.process.wait()
    third: Runtime = start_runtime(process_count=1, name="third")
    third.wait_all_ready(1)
    lock = json.loads((third.root / ".perago-supervisor.lock").read_text())
    assert lock == {"supervisor_pid": third.process.pid}
    third.send(signal.SIGTERM)
    assert third.exit_code() == 0


def write_attempt(
    root: Path,
    name: str,
    *,
    worker: str,
    pid: int,
    started_at: str = "2020-01-01T00:00:00+00:00",
) -> Path:
    directory = root / name
    (directory / "ws").mkdir(parents=True)
    meta = {
        "owner_worker_id": worker,
        "owner_pid": pid,
        "owner_token": "t",
        "execution_id": "e",
        "started_at": started_at,
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


def test_startup_sweep_survives_corrupt_and_foreign_entries(
    start_runtime, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("not yours")
    (root / "task_id=link").symlink_to(outside)
    (root / "task_id=plainfile").write_text("not a directory")
    (root / "task_id=corrupt").mkdir()
    (root / "task_id=corrupt" / "meta.json").write_text("{not json")
    (root / "task_id=legacy").mkdir()
    (root / "task_id=legacy" / ".perago-attempt.json").write_text(
        json.dumps(
            {
                "owner_worker_id": "old0001",
                "owner_pid": 1,
                "owner_token": "t",
                "execution_id": "e",
                "started_at": "2020-01-01T00:00:00",
            }
        )
    )
    write_attempt(root, "task_id=abandoned", worker="testWorker0001", pid=424242)
    (root / "somebody-elses-dir").mkdir()
    (root / "notes.txt").write_text("keep")

    runtime: Runtime = start_runtime(process_count=1, root=root)
    runtime.wait_all_ready(1)
    assert attempt_dirs(root) == ["task_id=link", "task_id=plainfile"]
    assert (outside / "precious.txt").read_text() == "not yours"
    assert (root / "somebody-elses-dir").is_dir() and (root / "notes.txt").exists()
    assert (
        runtime.logs("swept abandoned attempt workspaces at startup")[0][
            "removed_count"
        ]
        == 3
    )
    skipped = {
        Path(r["workspace_dir"]).name
        for r in runtime.logs("skipping attempt workspace entry")
    }
    assert skipped == {"task_id=link", "task_id=plainfile"}
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_no_attempt_directory_outlives_its_task(start_runtime) -> None:
    runtime: Runtime = start_runtime(
        process_count=2,
        tasks=[{"attempt": True, "sleep": 0.3}, {"attempt": True, "crash": True}],
    )
    runtime.wait_all_ready(2)
    created = runtime.wait_event("attempt_created", count=2)
    assert all(Path(e["dir"]).parent == runtime.root for e in created)
    runtime.wait_event("complete")
    crashed = runtime.wait_log("worker process exited; restarting")[0]
    assert crashed["signal"] == signal.SIGKILL
    # The finished task removed its own directory; targeted GC removed the killed executor's.
    runtime.wait_until(
        "attempt directories to be gone", lambda: attempt_dirs(runtime.root) == []
    )
    targeted = runtime.wait_log("garbage-collected workspaces for dead executor")[0]
    assert (targeted["worker_id"], targeted["pid"], targeted["removed_count"]) == (
        crashed["worker_id"],
        crashed["pid"],
        1,
    )
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def test_periodic_gc_spares_live_executors_and_final_sweep_clears_the_rest(
    start_runtime, tmp_path: Path
) -> None:
    runtime: Runtime = start_runtime(
        process_count=1,
        tasks=[{"attempt": True, "sleep": 30}],
        gc_interval=0.2,
        gc_ttl=0,
        force_kill_after=0.5,
    )
    runtime.wait_all_ready(1)
    live = Path(runtime.wait_event("attempt_created")[0]["dir"])
    orphan = write_attempt(
        runtime.root, "task_id=orphan", worker="testWorker0002", pid=424242
    )
    removed = runtime.wait_log("garbage-collected abandoned attempt workspaces")
    assert removed[0]["removed_count"] == 1
    assert not orphan.exists()
    assert live.is_dir(), "a live executor's attempt is never collected"
    # The task never finishes: the drain deadline kills it, and the final sweep removes its directory.
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0
    assert runtime.logs("force-killing worker process after shutdown drain deadline")
    assert attempt_dirs(runtime.root) == []


def test_attempt_helpers_keep_runtime_state_outside_the_task_workspace(
    tmp_path: Path,
) -> None:
    attempt = _core.create_attempt_workspace(
        tmp_path,
        workflow_instance_id="wf-1",
        task_id="task/1",
        execution_id="0123456789abcdef0123456789abcdef",
        retry_count=2,
        task_def_name="features_build",
        owner_worker_id="feat0001",
        owner_token="tok",
    )
    assert (
        attempt.dir == tmp_path / "task_id=task_1-exec=0123456789abcdef0123456789abcdef"
    )
    assert attempt.workspace == attempt.dir / _core.ATTEMPT_WORKSPACE_DIR_NAME
    meta = json.loads((attempt.dir / _core.ATTEMPT_META_FILE_NAME).read_text())
    assert list(meta) == sorted(meta)
    assert (
        meta["owner_pid"] == os.getpid()
        and meta["retry_count"] == 2
        and meta["task_id"] == "task/1"
    )
    # Whatever the task does inside its workspace, cleanup still works.
    for path in attempt.workspace.iterdir():
        path.unlink()
    (attempt.workspace / "meta.json").write_text("task wrote a file with the same name")
    _core.remove_attempt_workspace(attempt.dir)
    assert not attempt.dir.exists()
    # A live owner is spared by a GC pass, a dead one is not.
    kept = _core.create_attempt_workspace(
        tmp_path,
        workflow_instance_id="w",
        task_id="t2",
        execution_id="e2",
        retry_count=0,
        task_def_name="n",
        owner_worker_id="feat0001",
        owner_token="x",
    )
    assert (
        _core.collect_attempt_workspaces(
            tmp_path, active_owners={("feat0001", os.getpid())}
        )
        == []
    )
    assert _core.collect_attempt_workspaces(tmp_path, ttl_seconds=3600) == []
    time.sleep(0.01)
    assert _core.collect_attempt_workspaces(tmp_path) == [kept.dir]
