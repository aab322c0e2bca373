"""Every authoring case of `authoring_cases` behaves as in perago 0.6.1 (values and error texts).

The expected outcomes were recorded from the reference release by
scripts/generate_taskdef_goldens.py into golden/cases.json.
"""

import json
from pathlib import Path

import pytest

import authoring_cases

GOLDEN_ROOT = Path(__file__).parent / "golden"

EXPECTED: dict[str, str] = json.loads((GOLDEN_ROOT / "cases.json").read_text(encoding="utf-8"))


def test_every_case_has_a_recorded_outcome() -> None:
    assert sorted(authoring_cases.CASES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(authoring_cases.CASES))
def test_case_matches_perago_061(name: str) -> None:
    assert authoring_cases.outcome(authoring_cases.CASES[name]) == EXPECTED[name]
