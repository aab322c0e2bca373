"""Per-attempt cost of the Conductor input/output contract: perago against perago 0.6.1.

One workspace-free task (example B of spec/authoring.md, non-strict, with nested
params) is loaded in each interpreter — this venv and the oracle venv (default
`.peers/perago061`, built by `make peers`, override with `PERAGO_ORACLE_PYTHON`) — and one attempt's contract
work is timed: input key check → params validation → task body → result validation →
output payload. Both sides use their public entry points (0.6.1:
`invoke_workspace_free_task`; perago: `task.contract`). Both venvs carry the same
Pydantic, so the difference is perago's own overhead. Prints microseconds per attempt
and the speed-up.

Run: `.venv/bin/python benches/contract_cost.py [--attempts N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ORACLE_PYTHON = os.environ.get("PERAGO_ORACLE_PYTHON", str(Path(__file__).resolve().parents[1] / ".peers/perago061/bin/python"))

TASK_MODULE = '''
from pydantic import BaseModel, Field
from perago import task


class Stem(BaseModel):
    label: str = Field(min_length=1)
    gain_db: float = 0.0


class RenderQuery(BaseModel):
    track_id: str
    stems: list[Stem]
    sample_rate: int = 48000


class RenderVerdict(BaseModel):
    stem_count: int
    reason: str | None = None


@task(name="bench.contract", owner_email="bench@example.net")
def render(params: RenderQuery) -> RenderVerdict:
    return RenderVerdict(stem_count=len(params.stems))
'''

INPUT = {
    "params": {
        "track_id": "t-1",
        "stems": [{"label": "drums"}, {"label": "vox", "gain_db": "-1.5", "note": "dropped"}],
        "unknown": True,
    },
    "other": "ignored",
}


def _measure(attempts: int) -> float:
    """Microseconds per attempt in this interpreter (child side)."""
    import perago
    from perago import load_module_task

    definition = load_module_task("bench_contract_task")
    if hasattr(definition, "contract"):
        contract = definition.contract

        def attempt() -> object:
            _, raw_params = contract.split_input(INPUT)
            return contract.output(contract.validate_result(definition.fn(contract.validate_params(raw_params))))

    else:

        def attempt() -> object:
            return perago.invoke_workspace_free_task(definition, INPUT)

    expected = {"result": {"stem_count": 2, "reason": None}}
    assert attempt() == expected, attempt()
    return min(timeit.repeat(attempt, number=attempts, repeat=5)) / attempts * 1e6


def _run(python: str, attempts: int, module_dir: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(module_dir)}
    completed = subprocess.run(
        [python, __file__, "--child", "--attempts", str(attempts)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(completed.stdout)["us_per_attempt"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"us_per_attempt": _measure(args.attempts)}))
        return 0
    with tempfile.TemporaryDirectory(prefix="perago-contract-bench-") as scratch:
        (Path(scratch) / "bench_contract_task.py").write_text(TASK_MODULE, encoding="utf-8")
        ours = _run(sys.executable, args.attempts, Path(scratch))
        print(f"perago        {ours:8.2f} us/attempt")
        if not Path(ORACLE_PYTHON).exists():
            print(f"perago 0.6.1  skipped (no oracle interpreter at {ORACLE_PYTHON})")
            return 0
        oracle = _run(ORACLE_PYTHON, args.attempts, Path(scratch))
        print(f"perago 0.6.1  {oracle:8.2f} us/attempt")
        print(f"speed-up      {oracle / ours:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
