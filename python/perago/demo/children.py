"""The demo's two child processes: the Conductor emulator and the `perago start` runtime.

Both run in their own session, so a Ctrl-C in the terminal reaches only `perago demo`,
which then stops them in the right order: the runtime first (SIGTERM, it drains and
reports what it has in flight), the emulator last (it must outlive the drain).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from perago.demo.errors import DemoError
from perago.testing.conductor.server import READY_LINE

EMULATOR_STOP_SECONDS = 5.0


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a child's output file (empty if it wrote nothing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class EmulatorProcess:
    """`python -m perago.testing.conductor` on a free loopback port, in its own process.

    A separate process, so the emulator does not compete with the workers for a GIL.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        self._log = self.output.open("wb")
        command = [sys.executable, "-m", "perago.testing.conductor", "--host", "127.0.0.1", "--port", "0"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True)
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY_LINE):
            self.stop()
            raise DemoError(
                f"the Conductor emulator did not start (it said {line!r}); its output:\n{tail(self.output)}"
            )
        self.url = f"http://127.0.0.1:{int(line.rsplit(' ', 1)[1])}/api"

    def stop(self) -> None:
        process = self._process
        if process is not None:
            _stop(process, EMULATOR_STOP_SECONDS)
            if process.stdout is not None:
                process.stdout.close()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class RuntimeProcess:
    """`python -m perago.cli start MODULE -j N --execution-mode MODE`, output to a file."""

    def __init__(
        self, module_target: str, *, processes: int, execution_mode: str, env: Mapping[str, str], cwd: Path
    ) -> None:
        self.command = [
            sys.executable, "-m", "perago.cli", "start", module_target,
            "-j", str(processes), "--execution-mode", execution_mode,
        ]  # fmt: skip
        self.env = dict(env)
        self.cwd = cwd
        self.output = cwd / "runtime.out"
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = self.output.open("wb")
        self._process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def exit_code(self) -> int | None:
        """None while running."""
        return None if self._process is None else self._process.poll()

    def check_running(self) -> None:
        code = self.exit_code()
        if code is not None:
            raise DemoError(f"perago start exited early with status {code}; it said:\n{tail(self.output)}")

    def drain(self, timeout_seconds: float) -> int | None:
        """SIGTERM, wait for the drain; SIGKILL the whole tree after `timeout_seconds` or a
        second Ctrl-C. Returns the exit status, or None when it had to be killed."""
        process = self._process
        if process is None:
            return None
        try:
            return _stop(process, timeout_seconds)
        finally:
            self._process = None
            if self._log is not None:
                self._log.close()
                self._log = None


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes], timeout_seconds: float) -> int | None:
    """SIGTERM the session leader and wait; kill its process group if it does not end in time."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_seconds)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None
