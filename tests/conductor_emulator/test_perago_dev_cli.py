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
    port, lakefs_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [str(PERAGO), "dev", "--host", "127.0.0.1", "--conductor-port", str(port), "--lakefs-port", str(lakefs_port)],
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
        exports = dict(process.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(3))
        assert exports["LAKECTL_SERVER_ENDPOINT_URL"] == f"http://127.0.0.1:{lakefs_port}"
        auth = (exports["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"], exports["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"])
        assert httpx.get(f"http://127.0.0.1:{lakefs_port}/api/v1/config", auth=auth).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{lakefs_port}/api/v1/config", auth=("x", "y")).status_code == 401
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


def test_dev_keeps_lakefs_state_in_the_data_dir(tmp_path: Path) -> None:
    lakefs_port = _free_port()
    for run in range(2):
        process = subprocess.Popen(
            [str(PERAGO), "dev", "--lakefs-port", str(lakefs_port), "--data-dir", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            exports = dict(process.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(4))
            auth = (exports["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"], exports["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"])
            api = f"http://127.0.0.1:{lakefs_port}/api/v1"
            if run == 0:
                created = httpx.post(
                    f"{api}/repositories", json={"name": "kept", "storage_namespace": "local://kept"}, auth=auth
                )
                assert created.status_code == 201, created.text
            else:
                assert httpx.get(f"{api}/repositories/kept", auth=auth).status_code == 200
            process.terminate()
            process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0
