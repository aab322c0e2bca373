"""Helpers shared by the CLI tests (a uniquely named module: every test dir has a conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from perago.cli import app

CLI_TESTS_DIR = Path(__file__).resolve().parent
CONSOLE_SCRIPT = Path(sys.executable).with_name("perago")
CONFIG_VARIABLE_PREFIXES = ("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")


def invoke(*args: str) -> Result:
    """Run `perago <args>` in-process, stdout and stderr captured separately."""
    return CliRunner().invoke(app, list(args), prog_name="perago")


def run_console_script(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `perago` console script with only the configuration in `env`
    (plus the current roots), `cli_task_modules` importable, and wide rich output."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(CONFIG_VARIABLE_PREFIXES) or name in ("PERAGO_WORKSPACE_ROOT", "PERAGO_LOG_ROOT")
    }
    base.update({"PYTHONPATH": str(CLI_TESTS_DIR), "COLUMNS": "200", "PYTHONWARNINGS": "default"})
    base.update(env or {})
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=60, check=False
    )
