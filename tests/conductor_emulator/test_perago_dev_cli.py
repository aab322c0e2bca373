"""`perago dev`: foreground emulators, `export` lines on stdout, clean stop on SIGINT/SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

PERAGO = Path(sys.executable).parent / "perago"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_dev_prints_exports_serves_and_stops(stop_signal: signal.Signals) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [str(PERAGO), "dev", "--host", "127.0.0.1", "--conductor-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == f"export CONDUCTOR_SERVER_URL=http://127.0.0.1:{port}/api"
        url = line.split("=", 1)[1]
        assert httpx.get(url.removesuffix("/api") + "/health").json()["healthy"] is True
        assert httpx.post(f"{url}/metadata/taskdefs", json=[{"name": "from_dev"}]).status_code == 200
        process.send_signal(stop_signal)
        _, errors = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    assert "stopped" in errors


def test_dev_picks_a_free_port_by_default() -> None:
    process = subprocess.Popen([str(PERAGO), "dev"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"export CONDUCTOR_SERVER_URL=http://127\.0\.0\.1:(\d+)/api", line)
        assert match and int(match.group(1)) > 0
        process.terminate()
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_dev_reports_a_taken_port_as_an_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([str(PERAGO), "dev", "--conductor-port", str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: the Conductor emulator cannot listen on 127.0.0.1:{port}")
