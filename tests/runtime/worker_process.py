"""Start `perago start` as a real child process against the emulators, and watch its tasks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .conductor_admin import ConductorAdmin

TESTS_DIR = Path(__file__).resolve().parents[1]


def start_worker(
    conductor_url: str, tmp_path: Path, module: str, *, mode: str, processes: int = 3, **env: str
) -> subprocess.Popen[bytes]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("PERAGO_", "CONDUCTOR_", "LAKECTL_"))
    }
    environment.update(
        PYTHONPATH=str(TESTS_DIR),
        CONDUCTOR_SERVER_URL=conductor_url,
        PERAGO_WORKSPACE_ROOT=str(tmp_path / "workspaces"),
        PERAGO_LOG_ROOT=str(tmp_path / "logs"),
        **env,
    )
    command = [sys.executable, "-m", "perago.cli", "start", module, "-j", str(processes), "--execution-mode", mode]
    return subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_worker(worker: subprocess.Popen[bytes], signum: int) -> tuple[int, str]:
    """Send `signum`, wait for the exit; returns (exit code, stderr). Kills on timeout."""
    try:
        worker.send_signal(signum)
        _, stderr = worker.communicate(timeout=45)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    return worker.returncode, stderr.decode(errors="replace")


def wait_for_in_progress(admin: ConductorAdmin, workflow_ids: list[str], count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [
            wid for wid in workflow_ids if any(t["status"] == "IN_PROGRESS" for t in admin.workflow(wid)["tasks"])
        ]
        if len(running) >= count:
            return running
        time.sleep(0.05)
    raise AssertionError("the worker never picked up tasks")


def child_pids(parent: int, marker: str) -> list[int]:
    """Pids of `parent`'s children whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and marker in cmdline:
            found.append(int(entry.name))
    return found
