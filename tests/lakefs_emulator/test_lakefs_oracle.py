"""perago 0.6.1's own lakeFS workspace runtime, run unchanged against the emulator.

Needs an interpreter with perago==0.6.1 installed (PERAGO_ORACLE_PYTHON, default
/work/oracle/bin/python, see the common brief); skipped where none exists.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from perago.testing import LakeFSEmulator

ORACLE = Path(os.environ.get("PERAGO_ORACLE_PYTHON", "/work/oracle/bin/python"))
SCRIPT = Path(__file__).parent / "oracle" / "perago061_workspace_runtime.py"


@pytest.mark.skipif(not ORACLE.exists(), reason=f"no perago 0.6.1 interpreter at {ORACLE} (set PERAGO_ORACLE_PYTHON)")
def test_perago_061_downloads_stages_publishes_replaces_and_relocates() -> None:
    with LakeFSEmulator() as emulator:
        result = subprocess.run(
            [str(ORACLE), str(SCRIPT), emulator.url, emulator.access_key_id, emulator.secret_access_key],
            capture_output=True, text=True, timeout=100, cwd=SCRIPT.parent,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "perago 0.6.1 workspace runtime OK" in result.stdout
