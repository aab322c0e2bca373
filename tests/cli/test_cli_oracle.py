"""Replay of what the perago 0.6.1 console script printed (recorded by
`oracle/record_cli_cases.py`): same stdout, same `error:`/`warning:` lines, same exit
status, byte-identical TaskDef files; where 0.6.1 printed a traceback, so do we."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_harness import invoke

CASES = json.loads((Path(__file__).parent / "oracle" / "cli_cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[" ".join(case["args"][:2]) for case in CASES])
def test_same_output_as_perago_061(case: dict[str, Any], scratch_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_WORKSPACE_ROOT", "ws")
    monkeypatch.setenv("PERAGO_LOG_ROOT", "logs")
    for name, value in case["env"].items():
        monkeypatch.setenv(name, value)
    if case["dotenv"] is not None:
        (scratch_environment / ".env").write_text(case["dotenv"], encoding="utf-8")
    result = invoke(*case["args"])
    expected = case["result"]
    assert result.exit_code == expected["returncode"]
    assert result.stdout == expected["stdout"]
    if expected["traceback"]:
        assert result.exception is not None and not isinstance(result.exception, SystemExit)
    elif expected["returncode"] != 2:  # usage errors: framework text, boxed to the terminal width
        assert result.stderr == expected["stderr"]
    written = {str(p.relative_to(scratch_environment)): p.read_text(encoding="utf-8") for p in scratch_environment.rglob("*.json")}
    assert written == expected["files"]
