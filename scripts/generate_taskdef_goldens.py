#!/usr/bin/env python3
"""Regenerate tests/authoring/golden/ with the reference perago 0.6.1 (the oracle).

For every task module in tests/authoring/modules/authoring_tasks this runs the
oracle's `perago extract` and stores, per module:
  <module>.json    the TaskDef the oracle wrote (only when extract succeeded)
  <module>.stderr  the oracle's diagnostics: `warning: ` / `error: ` lines, Python
                   warnings as `<Category>: <message>`, and the last line of a traceback
and, from tests/authoring/modules/authoring_cases.py run in the oracle's interpreter,
  cases.json       the outcome (value or error text) of every authoring API case
The tests compare perago's own output with these files, so they need no oracle.

Usage: scripts/generate_taskdef_goldens.py [--oracle .peers/perago061/bin/perago] [MODULE ...]
(with MODULE names only those goldens are regenerated; without, all are, and stale ones removed)
The oracle venv: `make peers` (builds .peers/perago061 with perago==0.6.1)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES_ROOT = REPO / "tests" / "authoring" / "modules"
PACKAGE = "authoring_tasks"
GOLDEN = REPO / "tests" / "authoring" / "golden"

# Variables that would change what the oracle's configuration step does.
_CLEARED_PREFIXES = ("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")
# Plain and rich (Typer) traceback openings.
_TRACEBACK_STARTS = ("Traceback", "\u256d")
_PYTHON_WARNING = re.compile(r"^.*?:\d+: (\w*Warning): (.*)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", default=".peers/perago061/bin/perago", help="perago 0.6.1 console script")
    parser.add_argument("modules", nargs="*", help="module names inside authoring_tasks (default: all)")
    args = parser.parse_args()

    version = subprocess.run([args.oracle, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if version != "0.6.1":
        print(f"oracle reports version {version!r}, expected '0.6.1'", file=sys.stderr)
        return 1

    modules = args.modules or sorted(
        path.stem for path in (MODULES_ROOT / PACKAGE).glob("*.py") if path.stem != "__init__"
    )
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for stale in GOLDEN.glob("*"):
        if not args.modules or stale.name.split(".")[0] in modules:
            stale.unlink()
    with tempfile.TemporaryDirectory(prefix="perago-goldens-") as scratch:
        env = _oracle_env(Path(scratch))
        for module in modules:
            output = Path(scratch) / f"{module}.json"
            completed = subprocess.run(
                [args.oracle, "extract", f"{PACKAGE}.{module}", "-o", str(output)],
                capture_output=True,
                text=True,
                env=env,
                cwd=scratch,
            )
            if completed.returncode == 0:
                shutil.copyfile(output, GOLDEN / f"{module}.json")
            diagnostics = _diagnostics(completed.stderr)
            if diagnostics:
                (GOLDEN / f"{module}.stderr").write_text("".join(f"{line}\n" for line in diagnostics), encoding="utf-8")
            print(f"{module}: exit {completed.returncode}, {len(diagnostics)} diagnostic line(s)")
        if not args.modules:
            _generate_cases(Path(args.oracle).parent / "python", env, Path(scratch))
    return 0


def _generate_cases(oracle_python: Path, env: dict[str, str], scratch: Path) -> None:
    program = (
        "import json, sys, authoring_cases; "
        "json.dump(authoring_cases.run_all(), sys.stdout, indent=2, ensure_ascii=False)"
    )
    completed = subprocess.run(
        [str(oracle_python), "-c", program], capture_output=True, text=True, env=env, cwd=scratch, check=True
    )
    (GOLDEN / "cases.json").write_text(completed.stdout + "\n", encoding="utf-8")
    print(f"cases.json: {completed.stdout.count(chr(10))} lines")


def _oracle_env(scratch: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(_CLEARED_PREFIXES)}
    env["PYTHONPATH"] = str(MODULES_ROOT)
    env["PERAGO_WORKSPACE_ROOT"] = str(scratch / "workspaces")
    env["PERAGO_LOG_ROOT"] = str(scratch / "logs")
    env.pop("PYTHONWARNINGS", None)
    return env


def _diagnostics(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    kept: list[str] = []
    in_traceback = False
    for index, line in enumerate(lines):
        if line.startswith(_TRACEBACK_STARTS):
            in_traceback = True
            continue
        if in_traceback:
            continue
        if line.startswith(("warning: ", "error: ")):
            kept.append(line)
            # An `error:` message embedding a Pydantic error spans several lines.
            kept.extend(_continuation(lines[index + 1 :]))
            continue
        match = _PYTHON_WARNING.match(line)
        if match:
            kept.append(f"{match.group(1)}: {match.group(2)}")
    if in_traceback:
        last = next((line for line in reversed(lines) if line.strip()), "")
        kept.append(f"traceback: {last}")
    return kept


def _continuation(rest: list[str]) -> list[str]:
    taken = []
    for line in rest:
        if line.startswith(("warning: ", "error: ", *_TRACEBACK_STARTS)) or _PYTHON_WARNING.match(line):
            break
        taken.append(line)
    return taken


if __name__ == "__main__":
    sys.exit(main())
