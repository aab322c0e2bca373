"""Worker-runtime throughput and CPU per task, perago against its peers, in one run.

For a no-op task at -j 4, with the queue filled before the workers start, on one Conductor
emulator running in its own process:

- tasks/s = tasks / (last task endTime - first task startTime), Conductor's own timestamps;
- CPU per task = user+system CPU of the whole worker process tree (the process started and
  every descendant: supervisor, broker, executors, SDK processes; reaped children counted
  through their parent) from /proc, sampled every 20 ms and interpolated at those two
  instants, divided by the task count.

Contenders: perago in process mode (skipped, with its reason, while this build cannot run
it) and thread mode; perago 0.6.1 from the cached peer venv `.peers/perago061` (built by
`make peers` when missing); conductor-python's `TaskHandler` with 4 worker processes (one
thread each). Each gets its own task type; they run one after the other, in that order,
`--rounds` times, and the table shows each contender's median. "emulator busy" is the
emulator's CPU over the same span: near 100% means the emulator, not the worker, was the
limit.

    .venv/bin/python benches/throughput.py [--tasks 2000] [-j 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perago.demo.conductor_admin import ConductorAdmin
from perago.demo.progress import WorkflowTracker
from perago.testing.conductor import ConductorEmulator

REPO = Path(__file__).resolve().parents[1]
PEER_PERAGO = REPO / ".peers" / "perago061" / "bin" / "perago"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.02
TREE_REFRESH_SAMPLES = 25
STALL_SECONDS = 60.0
STOP_SECONDS = 10.0
CONFIG_PREFIXES = ("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")

NOOP_TASK_MODULE = """
from pydantic import BaseModel

from perago import task


class NoParams(BaseModel):
    pass


class NoResult(BaseModel):
    pass


@task(name="{task_name}", owner_email="bench@example.com")
def noop(params: NoParams) -> NoResult:
    return NoResult()
"""

# No `from __future__ import annotations` in it: the SDK reads annotations as real types.
SDK_WORKER_SCRIPT = """
import signal
import sys
import time

from conductor.client.automator.task_handler import TaskHandler
from conductor.client.configuration.configuration import Configuration
from conductor.client.worker.worker import Worker


def noop(params: dict) -> dict:
    return {"result": {}}


def main() -> None:
    task_type, processes = sys.argv[1], int(sys.argv[2])
    workers = [Worker(task_definition_name=task_type, execute_function=noop) for _ in range(processes)]
    handler = TaskHandler(workers=workers, configuration=Configuration(), scan_for_annotated_workers=False, monitor_processes=False)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    handler.start_processes()
    while not stopping:
        time.sleep(0.1)
    handler.stop_processes()


if __name__ == "__main__":
    main()
"""


# ---------------------------------------------------------------- CPU of a process tree


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _cpu_ticks(fields: list[str]) -> int:
    """utime + stime + cutime + cstime: its own CPU plus that of children it reaped."""
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(name))
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier.extend(children.get(pid, ()))
    return tree


class CpuSampler:
    """(wall time, CPU seconds) of a process tree every 20 ms on a background thread;
    `cpu_at(t)` interpolates between the samples around `t`. A process that dies between
    samples leaves its CPU in its parent's cutime/cstime once reaped, so the sum holds."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        members: list[int] = []
        count = 0
        while True:
            if count % TREE_REFRESH_SAMPLES == 0:
                members = _descendants(self.root)
            count += 1
            ticks = sum(_cpu_ticks(fields) for fields in map(_stat_fields, members) if fields is not None)
            self.samples.append((time.time(), ticks / CLOCK_TICKS))
            if self._stop.wait(SAMPLE_SECONDS):
                return

    def cpu_at(self, moment: float) -> float:
        times = [when for when, _ in self.samples]
        index = min(max(bisect.bisect_left(times, moment), 1), len(self.samples) - 1)
        (t0, c0), (t1, c1) = self.samples[index - 1], self.samples[index]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (min(max(moment, t0), t1) - t0) / (t1 - t0)


# ---------------------------------------------------------------- contenders


@dataclass(frozen=True)
class Contender:
    label: str
    key: str
    command: Callable[[str, str, int], list[str]]  # (module name, task type, processes) -> argv


def perago_command(mode: str) -> Callable[[str, str, int], list[str]]:
    def command(module: str, task_type: str, processes: int) -> list[str]:
        return [sys.executable, "-m", "perago.cli", "start", module, "-j", str(processes), "--execution-mode", mode]

    return command


def peer_perago_command(module: str, task_type: str, processes: int) -> list[str]:
    return [str(PEER_PERAGO), "start", module, "-j", str(processes)]


def sdk_command(module: str, task_type: str, processes: int) -> list[str]:
    return [sys.executable, "sdk_noop_worker.py", task_type, str(processes)]


CONTENDERS = [
    Contender("perago (process mode)", "perago_process", perago_command("process")),
    Contender("perago (thread mode)", "perago_thread", perago_command("thread")),
    Contender("perago 0.6.1", "perago061", peer_perago_command),
    Contender("conductor-python", "sdk", sdk_command),
]
PERAGO_LABELS = [contender.label for contender in CONTENDERS if contender.label.startswith("perago (")]
PEER_LABELS = [contender.label for contender in CONTENDERS if contender.label not in PERAGO_LABELS]


@dataclass(frozen=True)
class Measurement:
    tasks_per_second: float
    cpu_per_task_us: float
    emulator_busy: float


class Skipped(Exception):
    """This contender could not run here; the message says why."""


def ensure_peer_venv() -> None:
    if not PEER_PERAGO.exists():
        print("building the perago 0.6.1 peer venv (make peers) ...", file=sys.stderr, flush=True)
        subprocess.run(["make", "-C", str(REPO), "peers"], check=True, timeout=900)


def measure(
    contender: Contender, emulator: ConductorEmulator, scratch: Path, tasks: int, processes: int, round_index: int
) -> Measurement:
    task_type = f"bench_noop_{contender.key}_{round_index}"
    module = f"bench_noop_{contender.key}_{round_index}"
    (scratch / f"{module}.py").write_text(NOOP_TASK_MODULE.format(task_name=task_type))
    admin = ConductorAdmin(emulator.url)
    try:
        admin.register_taskdef(
            {"name": task_type, "ownerEmail": "bench@example.com", "retryCount": 0, "responseTimeoutSeconds": 600}
        )
        workflow = f"{task_type}_flow"
        admin.register_single_task_workflow(workflow, task_type)
        began = time.monotonic()
        tracker = WorkflowTracker(admin, [admin.start_workflow(workflow, {}) for _ in range(tasks)])
        _progress(f"queued {tasks:,} workflows in {time.monotonic() - began:.1f} s")

        env = {name: value for name, value in os.environ.items() if not name.startswith(CONFIG_PREFIXES)}
        env.pop("VIRTUAL_ENV", None)
        env.update(
            PYTHONPATH=str(scratch),
            CONDUCTOR_SERVER_URL=emulator.url,
            PERAGO_WORKSPACE_ROOT=str(scratch / f"{module}-workspaces"),
            PERAGO_LOG_ROOT=str(scratch / f"{module}-logs"),
        )
        output_path = scratch / f"{module}.out"
        with output_path.open("wb") as output:
            worker = subprocess.Popen(
                contender.command(module, task_type, processes), env=env, cwd=scratch,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                assert emulator.pid is not None
                with CpuSampler(worker.pid) as worker_cpu, CpuSampler(emulator.pid) as emulator_cpu:
                    _wait_until_done(tracker, tasks, emulator.url, task_type, worker, output_path)
                _progress(f"all ended {time.monotonic() - began:.1f} s after queueing began")
            finally:
                began = time.monotonic()
                _stop(worker)
                _progress(f"worker stopped in {time.monotonic() - began:.1f} s (exit status {worker.returncode})")
    finally:
        admin.close()

    workflows = tracker.finished
    not_completed = sum(1 for workflow in workflows if workflow["status"] != "COMPLETED")
    if not_completed:
        raise Skipped(f"{not_completed} of {tasks} workflows did not complete")
    first_start = min(task["startTime"] for workflow in workflows for task in workflow["tasks"]) / 1000
    last_end = max(task["endTime"] for workflow in workflows for task in workflow["tasks"]) / 1000
    span = last_end - first_start
    cpu = worker_cpu.cpu_at(last_end) - worker_cpu.cpu_at(first_start)
    emulator_busy = (emulator_cpu.cpu_at(last_end) - emulator_cpu.cpu_at(first_start)) / span
    return Measurement(tasks / span, cpu / tasks * 1e6, emulator_busy)


def _wait_until_done(
    tracker: WorkflowTracker, tasks: int, url: str, task_type: str, worker: subprocess.Popen[bytes], output_path: Path
) -> None:
    """Until every workflow has ended. While the queue has work, only its size is asked
    (one small request per 100 ms), so the emulator spends its time on the worker."""

    def check_worker() -> None:
        if worker.poll() is not None:
            said = output_path.read_text(errors="replace").strip().splitlines()
            raise Skipped(f"exited with status {worker.returncode}: {said[-1] if said else '(no output)'}")

    def queue_size() -> int:
        with urllib.request.urlopen(f"{url}/tasks/queue/size?taskType={task_type}", timeout=30) as answer:
            return int(answer.read())

    last_progress, last_seen = time.monotonic(), -1
    while True:
        time.sleep(0.1)
        check_worker()
        seen = queue_size()
        if seen == 0:
            break
        if seen != last_seen:
            last_progress, last_seen = time.monotonic(), seen
        elif time.monotonic() - last_progress > STALL_SECONDS:
            raise Skipped(f"stalled with {seen} tasks still queued")
    while not tracker.all_finished:
        check_worker()
        if tracker.refresh():
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > STALL_SECONDS:
            raise Skipped(f"stalled at {len(tracker.finished)} of {tasks} workflows")
        time.sleep(0.05)


def _progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its whole process group (as a terminal's Ctrl-C or systemd would signal
    it: perago 0.6.1 only stops that way), wait, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.wait(timeout=STOP_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


# ---------------------------------------------------------------- report


def report(results: dict[str, list[Measurement]], skipped: dict[str, str], args: argparse.Namespace) -> None:
    print(
        f"throughput: {args.tasks:,} no-op tasks per runtime, -j {args.j}, queue filled before start, "
        f"emulator in its own process, median of {args.rounds} round(s)"
    )
    medians = {
        label: Measurement(
            *(statistics.median(getattr(m, field) for m in runs) for field in Measurement.__dataclass_fields__)
        )
        for label, runs in results.items()
    }
    print(f"  {'runtime':<24}{'tasks/s':>9}{'CPU/task':>12}{'emulator busy':>15}")
    for contender in CONTENDERS:
        if contender.label in medians:
            m = medians[contender.label]
            print(
                f"  {contender.label:<24}{m.tasks_per_second:>9,.0f}{m.cpu_per_task_us:>9,.0f} µs{m.emulator_busy:>14.0%}"
            )
        else:
            print(f"  {contender.label:<24}skipped: {skipped.get(contender.label, 'not run')}")
    peers = [label for label in PEER_LABELS if label in medians]
    for label in PERAGO_LABELS:
        if label not in medians:
            continue
        ours = medians[label]
        for peer in peers:
            theirs = medians[peer]
            print(
                f"  {label} vs {peer}: {ours.tasks_per_second / theirs.tasks_per_second:.2f}x tasks/s, "
                f"{theirs.cpu_per_task_us / ours.cpu_per_task_us:.2f}x less CPU per task"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per contender (default 2000)")
    parser.add_argument("-j", type=int, default=4, help="executor processes / threads / SDK processes (default 4)")
    parser.add_argument("--rounds", type=int, default=1, help="run every contender this many times; report medians")
    args = parser.parse_args()
    ensure_peer_venv()
    results: dict[str, list[Measurement]] = {}
    skipped: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="perago-bench-") as scratch_dir,
        ConductorEmulator(in_process=False) as emulator,
    ):
        scratch = Path(scratch_dir)
        (scratch / "sdk_noop_worker.py").write_text(SDK_WORKER_SCRIPT)
        for round_index in range(args.rounds):
            for contender in CONTENDERS:
                if contender.label in skipped:
                    continue
                print(f"round {round_index + 1}: {contender.label} ...", file=sys.stderr, flush=True)
                try:
                    results.setdefault(contender.label, []).append(
                        measure(contender, emulator, scratch, args.tasks, args.j, round_index)
                    )
                except Skipped as reason:
                    results.pop(contender.label, None)
                    skipped[contender.label] = str(reason)
    report(results, skipped, args)


if __name__ == "__main__":
    main()
