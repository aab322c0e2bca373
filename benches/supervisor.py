"""Supervisor figures at -j 8: perago's Rust loop next to perago 0.6.1's Python loop.

Measured in each column:
  idle CPU      CPU time used by the supervisor process (and by the whole tree) over an
                idle window, as a percentage of one core (goal: ~0 % for the supervisor);
  restart       executor SIGKILL -> replacement ready, minus the restart backoff (1 s in
                all), median over a few kills on different slots (goal <= 300 ms), and
                how much of it is not the replacement's own start (for perago: the warm
                spare's promotion -> ready, as the supervisor logs it). perago's
                supervisor refills a slot from its warm spare executor; each kill waits
                until a spare is warm again (`spare executor warm`), so the figure is
                the usual case of one death at a time; a last row kills two executors at
                once and times the slot that did not get the spare (a cold spawn);
  start         supervisor launch -> every executor ready.

Columns:
  stand-ins     perago's supervisor running the test children of tests/supervisor (the
                stand-in spare included): they speak the real frame protocol but import
                only `perago._core`, so the figures are the supervisor's plus a bare
                interpreter boot;
  perago start  `perago start` with the real broker and executors, on
                tests/conductor_emulator/peers/peer_add_one.py and the in-repo Conductor
                emulator (ready = the supervisor's `worker process ready` record);
  0.6.1         upstream perago 0.6.1's `perago start` on the same module and emulator
                (ready = its `process executor started` JSONL record; it forks executors
                from the already-imported supervisor). Needs `make peers`.

    .venv/bin/python benches/supervisor.py [--jobs 8] [--idle-seconds 30] [--kills 3] [--skip-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHILDREN = REPO / "tests" / "supervisor" / "children"
PEER_PERAGO = REPO / ".peers" / "perago061" / "bin" / "perago"
PEER_MODULE = REPO / "tests" / "conductor_emulator" / "peers" / "peer_add_one.py"
TICKS = os.sysconf("SC_CLK_TCK")
BACKOFF_SECONDS = 1.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_pids(root: int) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        try:
            children = (
                Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            )
        except OSError:
            continue
        for child in map(int, children):
            pids.append(child)
            frontier.append(child)
    return pids


def idle_cpu(root: int, seconds: float) -> tuple[float, float]:
    """(supervisor %, whole tree %) of one core over `seconds`."""
    pids = tree_pids(root)
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    after = {pid: cpu_seconds(pid) for pid in pids if Path(f"/proc/{pid}").exists()}
    supervisor = (after[root] - before[root]) / seconds * 100
    tree = sum(after[pid] - before[pid] for pid in after) / seconds * 100
    return supervisor, tree


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise SystemExit(f"benchmark gave up waiting for {what}")


# --- perago ----------------------------------------------------------------------------


def kill_if_running(supervisor: subprocess.Popen[bytes]) -> None:
    """Last resort after a failed measurement: never leave a supervisor behind."""
    if supervisor.poll() is None:
        supervisor.kill()
        supervisor.wait()


def figures(
    supervisor_cpu: float,
    tree_cpu: float,
    restarts: list[float],
    boots: list[float],
    start: float,
    cold_restart: float | None,
) -> dict[str, float]:
    """One column of the table; the restart overhead is what is left once the replacement's own
    start (a cold spawn's boot or a promoted spare's promotion -> ready) is taken out."""
    restart = statistics.median(restarts)
    column = {
        "idle_supervisor": supervisor_cpu,
        "idle_tree": tree_cpu,
        "restart": restart,
        "restart_overhead": restart - statistics.median(boots),
        "start": start,
    }
    if cold_restart is not None:
        column["cold_restart"] = cold_restart
    return column


def cold_restart_of_two(
    stderr_log: Path, victims: list[tuple[str, int]], promoted: int
) -> float | None:
    """SIGKILL two executors (worker id, pid) at once while one spare is warm: one slot gets
    the spare, the other a cold spawn. Returns the cold slot's SIGKILL -> ready minus the
    backoff, from the supervisor's log; `None` without two victims."""
    if len(victims) < 2:
        return None
    wait_for_warm_spare(stderr_log, promoted)
    killed = time.time()
    for _, pid in victims:
        os.kill(pid, signal.SIGKILL)

    def ready_again(worker: str) -> list[dict[str, Any]]:
        return [
            r
            for r in supervisor_records(stderr_log, "worker process ready")
            if r["worker_id"] == worker and r["generation"] == 2
        ]

    backs = [
        wait_for(f"{worker} to come back", lambda w=worker: ready_again(w))[0]
        for worker, _ in victims
    ]
    cold = {
        r["worker_id"]
        for r in supervisor_records(stderr_log, "worker process started")
        if r["generation"] == 2
    }
    (cold_back,) = [b for b in backs if b["worker_id"] in cold]
    return cold_back["epoch"] - killed - BACKOFF_SECONDS


def measure_perago(jobs: int, idle_seconds: float, kills: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="perago-bench-supervisor-"))
    journal = work / "journal.jsonl"
    env = dict(
        os.environ,
        TEST_JOURNAL=str(journal),
        TEST_WORKSPACE_ROOT=str(work / "root"),
        TEST_TASKS="[]",
    )
    settings = {
        "workspace_root": str(work / "root"),
        "worker_id_prefix": "bench",
        "process_count": jobs,
        "broker_command": [sys.executable, str(CHILDREN / "broker.py")],
        "executor_command": [sys.executable, str(CHILDREN / "executor.py")],
        "spare_command": [sys.executable, str(CHILDREN / "spare.py")],
        "env": env,
    }
    (work / "settings.json").write_text(json.dumps(settings))

    def events(name: str) -> list[dict[str, Any]]:
        if not journal.exists():
            return []
        return [
            e
            for e in map(json.loads, journal.read_text().splitlines())
            if e["event"] == name
        ]

    launched = time.monotonic()
    supervisor = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "supervisor" / "launch.py"),
            str(work / "settings.json"),
        ],
        stderr=(work / "stderr.log").open("wb"),
    )
    try:
        ready = wait_for(
            "all executors ready",
            lambda: (e := events("executor_ready")) and len(e) >= jobs and e,
        )
        start = max(e["time"] for e in ready) - launched
        time.sleep(1.0)  # let the boot settle before the idle window
        supervisor_cpu, tree_cpu = idle_cpu(supervisor.pid, idle_seconds)
        restarts, boots = [], []
        for slot in range(1, kills + 1):
            worker = f"bench{slot:04d}"
            victim = next(
                e for e in events("executor_ready") if e["worker_id"] == worker
            )
            wait_for_warm_spare(work / "stderr.log", promoted=slot - 1)
            killed = time.monotonic()
            os.kill(victim["pid"], signal.SIGKILL)
            back = wait_for(
                f"{worker} to come back",
                lambda w=worker: [
                    e
                    for e in events("executor_ready")
                    if e["worker_id"] == w and e["generation"] == 2
                ],
            )[0]
            restarts.append(back["time"] - killed - BACKOFF_SECONDS)
            boots.append(
                wait_for(
                    f"{worker}'s ready record",
                    lambda w=worker: replacement_boot(work / "stderr.log", w),
                )
            )
        pair = [
            (e["worker_id"], e["pid"])
            for e in events("executor_ready")
            if int(e["worker_id"][-4:]) in (kills + 1, kills + 2)
        ]
        cold = cold_restart_of_two(work / "stderr.log", pair, promoted=kills)
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
    finally:
        kill_if_running(supervisor)
        shutil.rmtree(work, ignore_errors=True)
    return figures(supervisor_cpu, tree_cpu, restarts, boots, start, cold)


def wait_for_warm_spare(stderr_log: Path, promoted: int) -> None:
    """Wait until a spare has become warm since the last of `promoted` promotions."""
    wait_for(
        "a warm spare",
        lambda: len(supervisor_records(stderr_log, "spare executor warm")) > promoted,
    )


def replacement_boot(stderr_log: Path, worker_id: str) -> float | None:
    """Seconds the generation-2 executor of `worker_id` took from spawn or promotion to ready (supervisor's log)."""
    for line in stderr_log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"worker process ready"' in line:
            record = json.loads(line)
            if record["worker_id"] == worker_id and record["generation"] == 2:
                return float(record["startup_seconds"])
    return None


# --- perago 0.6.1 ----------------------------------------------------------------------


def executor_started_records(log_root: Path) -> list[dict[str, Any]]:
    records = []
    for path in log_root.rglob("*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)["record"]
            except (ValueError, KeyError):
                continue
            worker = record["extra"].get("worker_id", "")
            if record["message"] == "process executor started" and not worker.endswith(
                "Broker"
            ):
                records.append(
                    {
                        "worker_id": worker,
                        "pid": record["process"]["id"],
                        "time": record["time"]["timestamp"],
                    }
                )
    return records


def first_start_per_pid(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    by_pid: dict[int, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r["time"]):
        by_pid.setdefault(record["pid"], record)
    return by_pid


def measure_perago061(
    jobs: int, idle_seconds: float, kills: int
) -> dict[str, float] | None:
    if not PEER_PERAGO.exists():
        print(
            "perago 0.6.1 column skipped: run `make peers` to build .peers/perago061",
            file=sys.stderr,
        )
        return None
    sys.path.insert(0, str(REPO / "python"))
    from perago.testing.conductor import ConductorEmulator

    work, env = prepare_bench_module(PEER_PERAGO, "perago061-bench-supervisor-")
    env.pop("VIRTUAL_ENV", None)
    log_root = work / "logs"
    with ConductorEmulator() as conductor:
        # its own process group: 0.6.1 ignores SIGTERM, so the cleanup kills the group
        supervisor, launched = launch_start(PEER_PERAGO, conductor.url, work, env, jobs, new_session=True)
        try:
            started = wait_for(
                "0.6.1 executors ready",
                lambda: (
                    (r := first_start_per_pid(executor_started_records(log_root)))
                    and len(r) >= jobs
                    and r
                ),
            )
            start = max(r["time"] for r in started.values()) - launched
            time.sleep(1.0)
            supervisor_cpu, tree_cpu = idle_cpu(supervisor.pid, idle_seconds)
            restarts = []
            for slot in range(1, kills + 1):
                worker = f"peeraddone{slot:04d}"
                victim = next(
                    r for r in started.values() if r["worker_id"].lower() == worker
                )
                killed = time.time()
                os.kill(victim["pid"], signal.SIGKILL)
                back = wait_for(
                    f"0.6.1 {worker} to come back",
                    lambda w=worker, old=victim["pid"]: [
                        r
                        for r in first_start_per_pid(
                            executor_started_records(log_root)
                        ).values()
                        if r["worker_id"].lower() == w and r["pid"] != old
                    ],
                )[0]
                restarts.append(back["time"] - killed - BACKOFF_SECONDS)
        finally:
            # 0.6.1 does not stop on SIGTERM (runtime.md W33): kill the whole group.
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
            shutil.rmtree(work, ignore_errors=True)
    return {
        "idle_supervisor": supervisor_cpu,
        "idle_tree": tree_cpu,
        "restart": statistics.median(restarts),
        "start": start,
    }


def prepare_bench_module(cli: Path, prefix: str) -> tuple[Path, dict[str, str]]:
    """A scratch directory holding the bench task module and its TaskDef (`cli extract`),
    and the environment to run `cli start` there."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.copy(PEER_MODULE, work / "peer_add_one.py")
    env = {
        **os.environ,
        "PYTHONPATH": str(work),
        "PERAGO_WORKSPACE_ROOT": str(work / "ws"),
        "PERAGO_LOG_ROOT": str(work / "logs"),
    }
    subprocess.run(
        [str(cli), "extract", "peer_add_one", "-o", str(work / "taskdef.json")],
        check=True,
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
    )
    return work, env


def launch_start(
    cli: Path, conductor_url: str, work: Path, env: dict[str, str], jobs: int, *, new_session: bool
) -> tuple[subprocess.Popen[bytes], float]:
    """Register the bench TaskDef with the emulator, then `cli start -j jobs` (stderr to
    `work/stderr.log`); returns the process and its launch time."""
    import httpx

    taskdef = json.loads((work / "taskdef.json").read_text())
    httpx.post(f"{conductor_url}/metadata/taskdefs", json=[taskdef]).raise_for_status()
    env["CONDUCTOR_SERVER_URL"] = conductor_url
    launched = time.time()
    with (work / "stderr.log").open("wb") as stderr:
        supervisor = subprocess.Popen(
            [str(cli), "start", "peer_add_one", "-j", str(jobs)],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=new_session,
        )
    return supervisor, launched


def supervisor_records(stderr_log: Path, message: str) -> list[dict[str, Any]]:
    """perago's supervisor log records with this message, times as epoch seconds."""
    records = []
    for line in stderr_log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{message}"' in line:
            record = json.loads(line)
            record["epoch"] = datetime.fromisoformat(record["time"]).timestamp()
            records.append(record)
    return records


def measure_perago_start(
    jobs: int, idle_seconds: float, kills: int
) -> dict[str, float] | None:
    """`perago start` with the real broker and executors, same task module and emulator as 0.6.1."""
    sys.path.insert(0, str(REPO / "python"))
    from perago.testing.conductor import ConductorEmulator

    perago = Path(sys.executable).with_name("perago")
    work, env = prepare_bench_module(perago, "perago-bench-start-")
    stderr_log = work / "stderr.log"

    def ready(worker: str | None = None, generation: int = 1) -> list[dict[str, Any]]:
        return [
            r
            for r in supervisor_records(stderr_log, "worker process ready")
            if r["role"] == "executor"
            and r["generation"] == generation
            and (worker is None or r["worker_id"] == worker)
        ]

    with ConductorEmulator() as conductor:
        supervisor, launched = launch_start(perago, conductor.url, work, env, jobs, new_session=False)
        try:
            first = wait_for(
                "perago start executors ready",
                lambda: (r := ready()) and len(r) >= jobs and r,
            )
            start = max(r["epoch"] for r in first) - launched
            time.sleep(1.0)
            supervisor_cpu, tree_cpu = idle_cpu(supervisor.pid, idle_seconds)
            restarts, boots = [], []
            for promoted, record in enumerate(
                sorted(first, key=lambda r: r["worker_id"])[:kills]
            ):
                wait_for_warm_spare(stderr_log, promoted)
                killed = time.time()
                os.kill(record["pid"], signal.SIGKILL)
                back = wait_for(
                    f"{record['worker_id']} to come back",
                    lambda w=record["worker_id"]: ready(w, 2),
                )[0]
                restarts.append(back["epoch"] - killed - BACKOFF_SECONDS)
                boots.append(back["startup_seconds"])
            pair = [
                (r["worker_id"], r["pid"])
                for r in sorted(first, key=lambda r: r["worker_id"])[kills : kills + 2]
            ]
            cold = cold_restart_of_two(stderr_log, pair, promoted=kills)
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(timeout=60)
        finally:
            kill_if_running(supervisor)
            shutil.rmtree(work, ignore_errors=True)
    return figures(supervisor_cpu, tree_cpu, restarts, boots, start, cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--skip-peer", action="store_true", help="measure perago only")
    args = parser.parse_args()
    columns = {
        "stand-ins": measure_perago(args.jobs, args.idle_seconds, args.kills),
        "perago start": measure_perago_start(args.jobs, args.idle_seconds, args.kills),
        "0.6.1": None
        if args.skip_peer
        else measure_perago061(args.jobs, args.idle_seconds, args.kills),
    }
    rows = [
        ("idle CPU, supervisor (% of a core)", "idle_supervisor", "{:.3f}"),
        ("idle CPU, whole tree (% of a core)", "idle_tree", "{:.3f}"),
        ("executor SIGKILL -> ready, minus backoff (s)", "restart", "{:.3f}"),
        ("  of which not the replacement's start (s)", "restart_overhead", "{:.3f}"),
        ("two killed at once: the cold-spawned one (s)", "cold_restart", "{:.3f}"),
        ("start -> all executors ready (s)", "start", "{:.3f}"),
    ]
    print(
        f"supervisor at -j {args.jobs}, idle window {args.idle_seconds:.0f} s, median of {args.kills} kills"
    )
    print(
        f"{'':46}" + "".join(f"{name:>14}" for name in columns) + f"{'0.6.1/start':>13}"
    )
    for label, key, fmt in rows:
        cells = [
            ("-" if c is None or key not in c else fmt.format(c[key]))
            for c in columns.values()
        ]
        ours, peer = columns["perago start"], columns["0.6.1"]
        usable = ours is not None and peer is not None and key in peer and ours[key] > 0
        ratio = f"{peer[key] / ours[key]:.1f}x" if usable else "-"
        print(f"{label:46}" + "".join(f"{cell:>14}" for cell in cells) + f"{ratio:>13}")
    tick = 100 / TICKS / args.idle_seconds
    print(
        f"(CPU is counted in clock ticks: 0.000 means less than one tick, {tick:.3f} % over this window."
    )
    print(
        " stand-ins: perago's supervisor with the test children of tests/supervisor (no Conductor);"
    )
    print(
        " perago start / 0.6.1: the same task module on the in-repo Conductor emulator, tree CPU includes"
    )
    print(
        " the broker's long polls; 0.6.1 forks executors from the imported supervisor, perago execs them)"
    )


if __name__ == "__main__":
    main()
