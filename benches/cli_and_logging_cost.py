"""What an operator waits for and what a worker pays per log record: perago against 0.6.1.

1. Wall time of the console script: `perago --version` and `perago check MODULE` on a small
   workspace-free task module (fresh interpreter each run, median of N runs).
2. Records per second through the per-process JSONL sink (enqueue, serialize), perago with
   three secrets to mask against 0.6.1's sink, in each venv's own interpreter.

The oracle is the perago 0.6.1 venv (default `.peers/perago061`, built by `make peers`, override with
`PERAGO_ORACLE_VENV`). Prints each figure and the ratio 0.6.1 / perago (> 1 = perago is
faster). Run: `.venv/bin/python benches/cli_and_logging_cost.py [--runs N] [--records N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORACLE_VENV = Path(os.environ.get("PERAGO_ORACLE_VENV", str(Path(__file__).resolve().parents[1] / ".peers/perago061")))
OURS_VENV = Path(sys.executable).parent.parent

TASK_MODULE = """
from pydantic import BaseModel
from perago import task


class Greeting(BaseModel):
    name: str


class Reply(BaseModel):
    text: str


@task(name="bench.greet", owner_email="team@example.com")
def greet(params: Greeting) -> Reply:
    return Reply(text=f"hello {params.name}")
"""

LOGGING = """
import sys, tempfile, time
from datetime import timedelta
from pathlib import Path
from loguru import logger
import perago.runtime_logging as runtime_logging

records, root = int(sys.argv[1]), Path(tempfile.mkdtemp())
options = dict(log_root=root, module_target="bench.x", worker_id="benchx0001", max_bytes=10**9,
               retention=timedelta(days=1))
if hasattr(runtime_logging, "configure_jsonl_logging"):
    runtime_logging.configure_jsonl_logging(**options, secrets=["lakefs-secret", "auth-secret", "QUtJQTpsYWtlZnM="])
else:
    runtime_logging.configure_worker_logging(**options)
start = time.perf_counter()
for index in range(records):
    logger.bind(task_id=f"t-{index}").info("attempt {} finished", index)
logger.complete()
print(records / (time.perf_counter() - start))
"""


def median_wall_time(command: list[str], runs: int, cwd: Path, env: dict[str, str]) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    if not (ORACLE_VENV / "bin" / "perago").exists():
        sys.exit(f"perago 0.6.1 not found in {ORACLE_VENV} (set PERAGO_ORACLE_VENV)")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "bench_greet_module.py").write_text(TASK_MODULE, encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(work),
            "PERAGO_WORKSPACE_ROOT": str(work / "ws"),
            "PERAGO_LOG_ROOT": str(work / "logs"),
        }
        for label, arguments in [("perago --version", ["--version"]), ("perago check", ["check", "bench_greet_module"])]:
            oracle = median_wall_time([str(ORACLE_VENV / "bin" / "perago"), *arguments], args.runs, work, env)
            ours = median_wall_time([str(OURS_VENV / "bin" / "perago"), *arguments], args.runs, work, env)
            print(f"{label:18} 0.6.1 {oracle * 1000:7.0f} ms   perago {ours * 1000:7.0f} ms   ratio {oracle / ours:5.2f}")
        rates = {}
        for name, venv in [("0.6.1", ORACLE_VENV), ("perago", OURS_VENV)]:
            done = subprocess.run(
                [str(venv / "bin" / "python"), "-c", LOGGING, str(args.records)],
                cwd=work, capture_output=True, text=True, check=True,
            )
            rates[name] = float(done.stdout)
        print(
            f"{'log records/s':18} 0.6.1 {rates['0.6.1']:7.0f}      perago {rates['perago']:7.0f}      "
            f"ratio {rates['perago'] / rates['0.6.1']:5.2f}"
        )


if __name__ == "__main__":
    main()
