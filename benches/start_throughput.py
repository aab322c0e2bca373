"""Throughput of `perago start` for a no-op task, on the emulator in its own process.

The queue is filled before the worker starts. tasks/s = tasks / (last endTime − first
startTime), both from Conductor's own task timestamps; CPU per task = user+system CPU
of the whole worker process tree (supervisor, broker, executors; from /proc, sampled
every 20 ms and interpolated) over that same span, divided by the task count. Run:

    .venv/bin/python benches/start_throughput.py [--tasks 3000] [-j 4] [--execution-mode process|thread]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from perago.testing.conductor import ConductorEmulator

TASK_MODULE = '''
from pydantic import BaseModel
from perago import task

class NoParams(BaseModel):
    pass

class NoResult(BaseModel):
    pass

@task(name="bench.noop", owner_email="bench@example.com")
def noop(params: NoParams) -> NoResult:
    return NoResult()
'''


def call(url: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def cpu_seconds(root: int) -> float:
    """CPU of `root` and its live descendants, plus what its reaped children used."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, fields in stats.items():
            if int(fields[1]) == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    ticks = sum(int(stats[pid][11]) + int(stats[pid][12]) + int(stats[pid][13]) + int(stats[pid][14]) for pid in tree if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds so far per process title (`perago broker ...`, `perago executor ...`, supervisor)."""
    roles: dict[str, float] = {"supervisor": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        if pid != root and int(fields[1]) != root:
            continue
        role = "supervisor" if pid == root else " ".join(title.split()[:2])
        roles[role] = roles.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return roles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("-j", type=int, default=4)
    parser.add_argument("--execution-mode", choices=["process", "thread"], default="process")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, ConductorEmulator(in_process=False) as emulator:
        Path(scratch, "perago_bench_noop.py").write_text(TASK_MODULE)
        url = emulator.url
        call(url, "POST", "/metadata/taskdefs", [{"name": "bench.noop", "retryCount": 0, "responseTimeoutSeconds": 600}])
        call(url, "POST", "/metadata/workflow", {
            "name": "bench_flow", "version": 1, "schemaVersion": 2,
            "tasks": [{"name": "bench.noop", "taskReferenceName": "noop", "type": "SIMPLE", "inputParameters": {"params": {}}}],
        })
        workflow_ids = [str(call(url, "POST", "/workflow/bench_flow", {})) for _ in range(args.tasks)]

        env = {
            **os.environ,
            "PYTHONPATH": scratch,
            "CONDUCTOR_SERVER_URL": url,
            "PERAGO_WORKSPACE_ROOT": str(Path(scratch, "ws")),
            "PERAGO_LOG_ROOT": str(Path(scratch, "logs")),
        }
        command = [sys.executable, "-m", "perago.cli", "start", "perago_bench_noop", "-j", str(args.j), "--execution-mode", args.execution_mode]
        worker = subprocess.Popen(command, env=env, cwd=scratch)
        samples: list[tuple[float, float]] = []
        try:
            while True:
                samples.append((time.time(), cpu_seconds(worker.pid)))
                sizes = call(url, "GET", "/tasks/queue/sizes?taskType=bench.noop")
                if isinstance(sizes, dict) and sizes.get("bench.noop", 1) == 0:
                    last = call(url, "GET", f"/workflow/{workflow_ids[-1]}?includeTasks=false")
                    if isinstance(last, dict) and last.get("status") == "COMPLETED":
                        break
                time.sleep(0.02)
            time.sleep(0.2)
            samples.append((time.time(), cpu_seconds(worker.pid)))
            by_role = cpu_by_role(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)

        starts, ends, statuses = [], [], []
        for workflow_id in workflow_ids:
            workflow = call(url, "GET", f"/workflow/{workflow_id}")
            (task,) = workflow["tasks"]  # type: ignore[index]
            starts.append(task["startTime"])
            ends.append(task["endTime"])
            statuses.append(workflow["status"])  # type: ignore[index]

    span = (max(ends) - min(starts)) / 1000
    times = [when for when, _ in samples]

    def cpu_at(moment: float) -> float:
        index = min(max(bisect.bisect_left(times, moment), 1), len(samples) - 1)
        (t0, c0), (t1, c1) = samples[index - 1], samples[index]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (moment - t0) / (t1 - t0)

    cpu = cpu_at(max(ends) / 1000) - cpu_at(min(starts) / 1000)
    completed = statuses.count("COMPLETED")
    print(f"perago {args.execution_mode} mode, -j {args.j}, {args.tasks} no-op tasks, emulator in its own process")
    print(f"  completed        {completed}/{args.tasks}")
    print(f"  tasks/s          {args.tasks / span:,.0f}")
    print(f"  CPU per task     {cpu / args.tasks * 1e6:,.0f} µs (whole worker process tree)")
    for role, seconds in sorted(by_role.items()):
        print(f"    {role:20s} {seconds / args.tasks * 1e6:8,.0f} µs/task (whole run, start-up included)")


if __name__ == "__main__":
    main()
