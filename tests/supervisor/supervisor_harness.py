"""Harness for supervisor tests: a real supervisor process running the stand-in children.

(A module with its own name, not `conftest`, so test modules can import it whatever other
test directories' conftests are loaded.) Each test gets a `Runtime`: the supervisor's stderr (JSON log records) goes to a file,
the children append what they see to a journal file, and the helpers poll those files
until what the test waits for shows up (the supervisor itself never polls).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CHILDREN = HERE / "children"
WAIT_SECONDS = 30.0


@dataclass
class Runtime:
    process: subprocess.Popen[bytes]
    root: Path
    journal: Path
    stderr: Path

    def events(self, name: str | None = None, **match: Any) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        events = [
            json.loads(line)
            for line in self.journal.read_text().splitlines()
            if line.strip()
        ]
        return [
            e
            for e in events
            if (name is None or e["event"] == name)
            and all(e.get(k) == v for k, v in match.items())
        ]

    def logs(self, message: str | None = None) -> list[dict[str, Any]]:
        records = []
        for line in self.stderr.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return [r for r in records if message is None or r.get("message") == message]

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_until(
        self,
        what: str,
        condition: Callable[[], Any],
        timeout: float = WAIT_SECONDS,
        *,
        while_running: bool = True,
    ) -> Any:
        """Poll `condition`; give up early if the supervisor exited (unless `while_running=False`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if while_running and self.process.poll() is not None and not condition():
                break
            time.sleep(0.02)
        value = condition()
        if value:
            return value
        raise AssertionError(
            f"timed out waiting for {what}\n--- supervisor stderr ---\n{self.stderr_text()[-4000:]}"
            f"\n--- journal ---\n{self.events()[-30:]}"
        )

    def wait_event(
        self, name: str, count: int = 1, **match: Any
    ) -> list[dict[str, Any]]:
        return self.wait_until(
            f"{count}x {name} {match}",
            lambda: (e := self.events(name, **match)) and len(e) >= count and e,
        )

    def wait_log(self, message: str, count: int = 1) -> list[dict[str, Any]]:
        return self.wait_until(
            f"{count}x log {message!r}",
            lambda: (r := self.logs(message)) and len(r) >= count and r,
        )

    def wait_all_ready(self, process_count: int) -> None:
        self.wait_event("broker_ready")
        self.wait_until(
            f"{process_count} executors ready",
            lambda: (
                len({e["worker_id"] for e in self.events("executor_ready")})
                >= process_count
            ),
        )

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exit_code(self, timeout: float = WAIT_SECONDS) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"supervisor did not exit\n{self.stderr_text()[-4000:]}"
            ) from None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_supervisor(
    tmp_path: Path,
    *,
    process_count: int = 2,
    root: Path | None = None,
    name: str = "sup",
    executor_env: dict[str, str] | None = None,
    tasks: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> Runtime:
    """Launch a supervisor over the stand-in children (with the stand-in warm spare unless
    `spare_command=None`); `settings` override SupervisorSettings fields."""
    root = root or tmp_path / "root"
    journal = tmp_path / f"{name}-journal.jsonl"
    stderr = tmp_path / f"{name}-stderr.log"
    env = dict(os.environ)
    env.update(executor_env or {})
    env["TEST_JOURNAL"] = str(journal)
    env["TEST_WORKSPACE_ROOT"] = str(root)
    env["TEST_TASKS"] = json.dumps(tasks or [])
    config = {
        "workspace_root": str(root),
        "worker_id_prefix": "testWorker",
        "process_count": process_count,
        "broker_command": [sys.executable, str(CHILDREN / "broker.py")],
        "executor_command": [sys.executable, str(CHILDREN / "executor.py")],
        "spare_command": [sys.executable, str(CHILDREN / "spare.py")],
        "env": env,
        "backoff_unit": 0.05,
        "healthy_after": 60,
        "gc_interval": 3600,
        "gc_ttl": 86400,
    }
    config.update(settings)
    config_path = tmp_path / f"{name}-settings.json"
    config_path.write_text(json.dumps(config))
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "launch.py"), str(config_path)],
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    return Runtime(process=process, root=root, journal=journal, stderr=stderr)
