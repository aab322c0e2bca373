"""CLI tests run in a scratch working directory with none of the operator's variables set.

`cli_task_modules` (next to this file) holds the task modules the commands are pointed at;
pytest puts this directory on `sys.path`, and subprocess tests pass it as `PYTHONPATH`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_harness import CONFIG_VARIABLE_PREFIXES


@pytest.fixture(autouse=True)
def scratch_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd = a fresh directory; no configuration variables except the two roots under it."""
    for name in list(os.environ):
        if name.startswith(CONFIG_VARIABLE_PREFIXES):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PERAGO_WORKSPACE_ROOT", str(tmp_path / "workspaces"))
    monkeypatch.setenv("PERAGO_LOG_ROOT", str(tmp_path / "logs"))
    yield work
