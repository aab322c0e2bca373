"""`perago start` pre-start checks: each failure is one `error:` line and exit 1, before anything runs."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import perago
from perago.cli import app
from perago.launch import StartCheckFailed, check_start
from perago.testing.conductor import ConductorEmulator

from .conductor_admin import ConductorAdmin

CONFIG_PREFIXES = ("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(CONFIG_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERAGO_WORKSPACE_ROOT", str(tmp_path / "workspaces"))
    monkeypatch.setenv("PERAGO_LOG_ROOT", str(tmp_path / "logs"))
    yield tmp_path


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConductorEmulator]:
    with ConductorEmulator() as running:
        monkeypatch.setenv("CONDUCTOR_SERVER_URL", running.url)
        yield running


def start(*args: str) -> Result:
    return CliRunner().invoke(app, ["start", *args], prog_name="perago")


def error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


def test_conductor_url_is_required_before_the_module_is_imported() -> None:
    assert error_line(start("no.such.module")) == "CONDUCTOR_SERVER_URL is required for perago start"


def test_a_missing_module_says_which_step_failed(emulator: ConductorEmulator) -> None:
    assert error_line(start("no.such.module", "--execution-mode", "thread")) == (
        "failed to import the task module no.such.module: ModuleNotFoundError: No module named 'no'"
    )


def test_an_unregistered_taskdef_is_refused(emulator: ConductorEmulator) -> None:
    assert error_line(start("runtime.workers.echo", "--execution-mode", "thread")) == (
        "Conductor TaskDef 'runtime.echo' is not registered; run perago extract and register it before start"
    )


def test_an_unreachable_conductor_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    monkeypatch.setenv("CONDUCTOR_SERVER_URL", f"http://127.0.0.1:{port}/api")
    message = error_line(start("runtime.workers.echo", "--execution-mode", "thread"))
    assert message.startswith("failed to validate Conductor TaskDef: ConductorTransportError: ")
    assert "ConnectionRefusedError" in message


def test_process_mode_is_the_default(emulator: ConductorEmulator) -> None:
    ConductorAdmin(emulator.url).register_task("runtime.echo")
    assert check_start("runtime.workers.echo").execution_mode == "process"


def test_execution_mode_comes_from_the_environment(emulator: ConductorEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ConductorAdmin(emulator.url).register_task("runtime.echo")
    monkeypatch.setenv("PERAGO_EXECUTION_MODE", "Thread")
    plan = check_start("runtime.workers.echo")
    assert (plan.execution_mode, plan.task.name) == ("thread", "runtime.echo")
    assert check_start("runtime.workers.echo", execution_mode="thread").execution_mode == "thread"


def test_usage_errors_exit_2() -> None:
    assert start("runtime.workers.echo", "-j", "0").exit_code == 2
    assert start("runtime.workers.echo", "--execution-mode", "Thread").exit_code == 2


def test_the_python_api_raises_instead_of_printing() -> None:
    with pytest.raises(StartCheckFailed, match="CONDUCTOR_SERVER_URL is required"):
        perago.start("runtime.workers.echo", processes=2, execution_mode="thread")
    with pytest.raises(ValueError, match="at least 1"):
        perago.start("runtime.workers.echo", processes=0)
