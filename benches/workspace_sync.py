"""Workspace download + publish: perago against perago 0.6.1 on the same lakeFS emulator.

The emulator runs in its own process (`python -m perago.testing.lakefs`); each measured
child process — perago from this venv, perago 0.6.1 from an oracle venv (default
`.peers/perago061`, built by `make peers`, override with `PERAGO_ORACLE_PYTHON`) — runs two
attempts of the same input ref, each publishing to its own branch: a cold one (empty
workspace root, so perago's object cache is empty) and a warm one (the same workspace root,
as a retry or a later attempt on the same host would find it). After imports and client
set-up, each attempt is timed from download → task body → change detection → staging →
publication → removal of the attempt workspace (both implementations delete it before the
attempt returns), and the object uploads and GETs it sent are counted. Three scenarios on a
repository of FILES objects (default 1,000 × 256 KiB = 256 MB): the body rewrites every
file, changes exactly one, or changes nothing (a changed file gets a stamp unique to the
attempt: its content is new to the emulator, as a first attempt's output would be). Prints
wall seconds (cold, warm), the child's own CPU seconds for the cold attempt (what the client
costs, less sensitive to a busy machine than wall time) plus the emulator's CPU over the same
attempt ("client+server"), and the speed-ups of perago over 0.6.1, which has no cache (its warm attempt only benefits
from the page cache): wall time cold and warm, and how much less CPU the cold attempt costs
client and server together. The cold figures compare transfers; the warm ones show what the
cache saves. Wall times move with the machine's load, the CPU ratio much less.

With `--repeat R` the contenders alternate (perago, 0.6.1, perago, ...) and the fastest run of
each is reported. Where the files live matters on some machines: on an ext4 without a journal
(this project's build VM) every file creation scans past the inodes freed in the last minutes,
so the workspaces earlier runs removed slow later ones by up to 2x; `--scratch /dev/shm` (a
tmpfs) takes the filesystem out of the comparison.

Run: `.venv/bin/python benches/workspace_sync.py [--files N] [--kib K] [--repeat R] [--scenario S] [--scratch DIR]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ORACLE_PYTHON = os.environ.get("PERAGO_ORACLE_PYTHON", str(Path(__file__).resolve().parents[1] / ".peers/perago061/bin/python"))
SCENARIOS = ("every file changed", "one file changed", "nothing changed")


# ----------------------------------------------------------------------------- child side


def _count_requests() -> dict[str, int]:
    """Count object uploads (POST …/branches/…/objects?path=…) and downloads (GET …/objects?path=…)
    where requests are written: http.client (urllib3, so the SDK and 0.6.1) and perago's `http_wire`."""
    import http.client

    counter = {"uploads": 0, "downloads": 0}

    def count(method: str, url: str) -> None:
        if "/objects?" in url and method == "POST" and "/branches/" in url:
            counter["uploads"] += 1
        elif "/objects?" in url and method == "GET" and "/refs/" in url:
            counter["downloads"] += 1

    def counting(original):  # type: ignore[no-untyped-def]
        def wrapper(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
            count(method, url)
            return original(self, method, url, *args, **kwargs)

        return wrapper

    http.client.HTTPConnection.putrequest = counting(http.client.HTTPConnection.putrequest)  # type: ignore[method-assign]
    try:
        from perago.workspace.http_wire import Connection
    except ImportError:  # perago 0.6.1
        return counter
    Connection.send_head = counting(Connection.send_head)  # type: ignore[method-assign]
    return counter


def _body(scenario: str, attempt: str):  # type: ignore[no-untyped-def]
    """The task body: overwrite the first bytes of every file, of one, or of none, with a stamp
    unique to the attempt, so each attempt uploads content the emulator has not stored yet, as
    a first attempt's output would be (the emulator stores identical content once: a repeated
    output would be ingested and then discarded instead of stored)."""
    stamp = hashlib.sha256(attempt.encode()).digest()[:16]

    def change(root: Path) -> None:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        targets = {SCENARIOS[0]: files, SCENARIOS[1]: files[:1]}.get(scenario, [])
        for path in targets:
            with open(path, "r+b") as handle:
                handle.write(stamp)

    return change


def _attempt(task_id: str):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    return SimpleNamespace(
        workflow_instance_id=f"wf-{task_id}", reference_task_name="bench", seq=1, iteration=0,
        task_id=task_id, retry_count=0, task_def_name="bench", status="IN_PROGRESS", execution_id=task_id,
    )


def prepare_perago(env: dict[str, str], repo: str, ref: str, scenario: str, workdir: Path):  # type: ignore[no-untyped-def]
    from perago.workspace import run_workspace_attempt
    from perago.workspace.lakefs_client import LakeFSClient
    from perago.workspace.runtime import LakeFSWorkspaceRuntime
    from perago.workspace_spec import WorkspaceSpec

    client = LakeFSClient(
        env["LAKECTL_SERVER_ENDPOINT_URL"],
        env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )
    runtime = LakeFSWorkspaceRuntime(client)
    spec = WorkspaceSpec(prefix="/data")

    def attempt(branch: str) -> str:
        # attempt directories side by side, as under PERAGO_WORKSPACE_ROOT: they share the object cache
        attempt_dir = workdir / f"task_id={branch}"
        attempt_dir.mkdir()
        output = run_workspace_attempt(
            workspace={"repository": repo, "branch": branch, "refType": "commit", "ref": ref},
            spec=spec,
            attempt=_attempt(branch),
            execution_id=os.urandom(16).hex(),
            attempt_dir=attempt_dir,
            runtime=runtime,
            fence=lambda: None,
            run_body=_body(scenario, branch),
        )
        return output["workspace"]["ref"]

    return attempt


def prepare_perago061(env: dict[str, str], repo: str, ref: str, scenario: str, workdir: Path):  # type: ignore[no-untyped-def]
    from lakefs import Client
    from perago.execution import (
        _snapshot_workspace,  # 0.6.1 hashes the workspace before and after
    )
    from perago.lakefs_runtime import LakeFSWorkspaceRuntime
    from perago.models import WorkspaceInput, WorkspaceSpec

    runtime = LakeFSWorkspaceRuntime(
        client=Client(
            host=env["LAKECTL_SERVER_ENDPOINT_URL"],
            username=env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
            password=env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
        )
    )
    spec = WorkspaceSpec(prefix="/data")

    def attempt(branch: str) -> str:
        workspace = WorkspaceInput.model_validate({"repository": repo, "branch": branch, "refType": "commit", "ref": ref})
        task = _attempt(branch)
        root = workdir / f"ws-{branch}"
        root.mkdir()
        try:
            runtime.download_workspace(workspace, spec, root)
            before = _snapshot_workspace(root)
            _body(scenario, branch)(root)
            if _snapshot_workspace(root) == before:
                return runtime.complete_noop_workspace(workspace, spec, task)
            staged = runtime.stage_workspace(root, workspace, spec, task)
            try:
                return runtime.publish_workspace(staged, workspace, spec, task)
            finally:
                runtime.cleanup_staging(staged)
        finally:
            shutil.rmtree(root)  # 0.6.1's execute removes the attempt workspace too, as perago does

    return attempt


def child_main(argv: list[str]) -> None:
    """Two attempts of the same input in one process and workspace root: cold, then warm."""
    implementation, repo, ref, scenario, *branches = argv
    env = dict(os.environ)
    requests = _count_requests()
    prepare = prepare_perago if implementation == "perago" else prepare_perago061
    results = {}
    with tempfile.TemporaryDirectory(prefix="perago-bench-") as scratch:
        attempt = prepare(env, repo, ref, scenario, Path(scratch))
        for label, branch in zip(("cold", "warm"), branches):
            before = dict(requests)
            server_started = _server_cpu()
            started, cpu_started = time.perf_counter(), time.process_time()
            published = attempt(branch)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            counts = {name: requests[name] - before[name] for name in requests}
            server_cpu = _server_cpu() - server_started
            results[label] = {"seconds": seconds, "cpu": cpu, "server_cpu": server_cpu, **counts, "ref": published}
    print(json.dumps(results))


def _server_cpu() -> float:
    """CPU seconds (user + system) the emulator process has used so far, from /proc."""
    fields = Path(f"/proc/{os.environ['BENCH_EMULATOR_PID']}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- parent side


def start_emulator(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "perago.testing.lakefs", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    env: dict[str, str] = {}
    while len(env) < 3:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError("the lakeFS emulator exited before printing its address")
        name, _, value = line.removeprefix("export ").strip().partition("=")
        env[name] = value.strip("'")
    return process, env


def seed(env: dict[str, str], files: int, kib: int, scratch: Path) -> tuple[str, str]:
    import lakefs_sdk
    from perago.workspace.lakefs_client import LakeFSClient
    from perago.workspace.transfer import run_bounded

    client = LakeFSClient(
        env["LAKECTL_SERVER_ENDPOINT_URL"],
        env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )
    repo = "bench-repo"
    lakefs_sdk.RepositoriesApi(client._api).create_repository(
        lakefs_sdk.RepositoryCreation(name=repo, storage_namespace="local://bench", default_branch="main")
    )

    def upload(index: int) -> None:
        # one source file per uploading thread, rewritten for each object: creating and deleting
        # a file per object would leave the filesystem's inode tables full of freshly freed
        # entries, which ext4 without a journal skips slowly for minutes, while the attempts run
        path = scratch / f"seed-{threading.get_ident()}.bin"
        path.write_bytes(os.urandom(kib * 1024))
        client.upload_object(
            repo, "main", f"data/d{index % 20:02d}/f{index:04d}.bin", path, kib * 1024,
            content_type=None, metadata={},
        )

    run_bounded(upload, range(files), 8)
    commit = client.commit(repo, "main", "seed", {})
    return repo, commit.id


def _child_environment(python: str) -> dict[str, str]:
    """This process's environment, without PYTHONPATH for the oracle (it must import its own perago)."""
    if python == sys.executable:
        return dict(os.environ)
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def measure(
    python: str, implementation: str, env: dict[str, str], repo: str, ref: str, scenario: str, emulator_pid: int
) -> dict[str, dict[str, object]]:
    """Run one child (a cold then a warm attempt, each on its own new branch at `ref`) and check
    what each published."""
    from perago.workspace.lakefs_client import LakeFSClient

    client = LakeFSClient(
        env["LAKECTL_SERVER_ENDPOINT_URL"],
        env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )
    tag = f"{implementation.replace('.', '')}-{SCENARIOS.index(scenario)}-{os.urandom(3).hex()}"
    branches = {label: f"bench-{tag}-{label}" for label in ("cold", "warm")}
    for branch in branches.values():
        client.create_branch(repo, branch, ref, hidden=False)
    child = subprocess.run(
        [python, __file__, "--child", implementation, repo, ref, scenario, branches["cold"], branches["warm"]],
        env={**_child_environment(python), **env, "BENCH_EMULATOR_PID": str(emulator_pid)},
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"{implementation} failed:\n{child.stderr[-3000:]}")
    results = json.loads(child.stdout.strip().splitlines()[-1])
    for label, branch in branches.items():
        head = client.get_commit(repo, branch)
        expected_parents = (ref,) if scenario != SCENARIOS[2] else head.parents
        if head.id != results[label]["ref"] or head.parents != expected_parents:
            raise RuntimeError(
                f"{implementation} ({label}) published {results[label]['ref']}, head {head.id} parents {head.parents}"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest is reported")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only this scenario (repeatable); default: all"
    )
    parser.add_argument(
        "--scratch",
        help="directory for the emulator's data and the attempt workspaces (default: the system temp directory)",
    )
    args = parser.parse_args()
    if args.scratch:
        os.environ["TMPDIR"] = args.scratch  # the children's workspaces too
        tempfile.tempdir = None
    if not Path(ORACLE_PYTHON).exists():
        sys.exit(f"perago 0.6.1 oracle interpreter not found at {ORACLE_PYTHON} (set PERAGO_ORACLE_PYTHON)")
    with tempfile.TemporaryDirectory(prefix="perago-bench-lakefs-") as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "data").mkdir()
        emulator, env = start_emulator(scratch / "data")
        try:
            repo, ref = seed(env, args.files, args.kib, scratch)
            total_mb = args.files * args.kib / 1024
            print(
                f"workspace: {args.files} files, {total_mb:.0f} MB; download + body + publish. Each child process "
                "runs a cold attempt (empty object cache) then a warm one (same input, same workspace root)"
            )
            print(
                f"{'scenario':<20} {'implementation':<15} {'cold s':>7} {'warm s':>7} {'cold CPU s':>15} "
                f"{'uploads':>8} {'GETs cold':>9} {'GETs warm':>9}"
            )
            contenders = (("perago", sys.executable), ("perago 0.6.1", ORACLE_PYTHON))
            for scenario in args.scenario or SCENARIOS:
                runs: dict[str, list[dict[str, dict[str, object]]]] = {name: [] for name, _ in contenders}
                for _ in range(max(1, args.repeat)):
                    for implementation, python in contenders:  # alternating: both meet the same machine state
                        runs[implementation].append(
                            measure(python, implementation.replace(" ", ""), env, repo, ref, scenario, emulator.pid)
                        )
                cells: dict[str, dict[str, float]] = {}
                for implementation, _ in contenders:
                    cold = min((run["cold"] for run in runs[implementation]), key=lambda result: result["seconds"])
                    warm = min((run["warm"] for run in runs[implementation]), key=lambda result: result["seconds"])
                    cold_cpu = min(run["cold"]["cpu"] + run["cold"]["server_cpu"] for run in runs[implementation])  # type: ignore[operator]
                    cells[implementation] = {"cold": cold["seconds"], "warm": warm["seconds"], "cpu": cold_cpu}  # type: ignore[dict-item]
                    cpu_split = f"{cold['cpu']:.2f}+{cold['server_cpu']:.2f}"
                    print(
                        f"{scenario:<20} {implementation:<15} {cold['seconds']:>7.2f} {warm['seconds']:>7.2f} "
                        f"{cpu_split:>15} {cold['uploads']:>8} {cold['downloads']:>9} {warm['downloads']:>9}"
                    )
                ratios = {name: cells["perago 0.6.1"][name] / cells["perago"][name] for name in ("cold", "warm", "cpu")}
                print(
                    f"{scenario:<20} {'speed-up':<15} {ratios['cold']:>6.1f}x {ratios['warm']:>6.1f}x "
                    f"{ratios['cpu']:>14.1f}x less"
                )
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
