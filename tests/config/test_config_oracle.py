"""Replay of perago 0.6.1's `load_runtime_config` outcomes (recorded by
`oracle/record_config_cases.py` with the upstream package): same values, same first error,
same message."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from perago import load_runtime_config

CASES = json.loads((Path(__file__).parent / "oracle" / "config_cases.json").read_text(encoding="utf-8"))


def outcome(case: dict[str, Any], workdir: Path) -> list[object]:
    if case["dotenv"] is not None:
        (workdir / ".env").write_text(case["dotenv"], encoding="utf-8")
    try:
        config = load_runtime_config(case["target"], cwd=workdir, process_env=case["env"], probe_roots=False)
    except Exception as exc:  # noqa: BLE001 - comparing whatever happens
        return [type(exc).__name__, str(exc)]
    dumped = config.model_dump(mode="json")
    if dumped["conductor"] is not None:
        # perago 0.6 had no Conductor auth fields; unset they must stay None here.
        assert dumped["conductor"].pop("auth_key") is None
        assert dumped["conductor"].pop("auth_secret") is None
    return ["ok", json.loads(json.dumps(dumped).replace(tempfile.gettempdir(), "<tempdir>"))]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_same_outcome_as_perago_061(case: dict[str, Any], tmp_path: Path) -> None:
    assert outcome(case, tmp_path) == case["outcome"]
