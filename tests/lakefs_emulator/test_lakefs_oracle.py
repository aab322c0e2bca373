"""perago 0.6.1's own lakeFS workspace runtime, run unchanged against the emulator.

Runs in the cached peer venv `.peers/perago061` that `make peers` builds (and `make test`
depends on), so it runs wherever the suite runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from perago.testing import LakeFSEmulator

ORACLE = Path(__file__).resolve().parents[2] / ".peers" / "perago061" / "bin" / "python"
SCRIPT = Path(__file__).parent / "oracle" / "perago061_workspace_runtime.py"


def test_perago_061_downloads_stages_publishes_replaces_and_relocates() -> None:
    assert ORACLE.exists(), f"no perago 0.6.1 interpreter at {ORACLE}: run `make peers`"
    with LakeFSEmulator() as emulator:
        result = subprocess.run(
            [str(ORACLE), str(SCRIPT), emulator.url, emulator.access_key_id, emulator.secret_access_key],
            capture_output=True, text=True, timeout=100, cwd=SCRIPT.parent,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "perago 0.6.1 workspace runtime OK" in result.stdout
