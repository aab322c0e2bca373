"""Workspace download + publish: perago against perago 0.6.1 on the same lakeFS emulator.

The emulator runs in its own process (`python -m perago.testing.lakefs`); each measured
attempt runs in a fresh child process — perago from this venv, perago 0.6.1 from an
oracle venv (default `.peers/perago061`, built by `make peers`, override with `PERAGO_ORACLE_PYTHON`). After its
imports and client set-up, a child times download → task body → change detection →
staging → publication, and counts the object uploads it sent. Three scenarios on a repository of FILES objects (default 1,000 × 256 KiB
= 256 MB): the body rewrites every file, changes exactly one, or changes nothing. Prints
wall seconds, the child's own CPU seconds (what the client costs, less sensitive to a busy
machine than wall time), uploads and the wall-time speed-up of perago over 0.6.1. When every file changes, both
versions must send all bytes and the emulator's ingest (hashing and writing in one Python
process) bounds both.

Run: `.venv/bin/python benches/workspace_sync.py [--files N] [--kib K] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORACLE_PYTHON = os.environ.get("PERAGO_ORACLE_PYTHON", str(Path(__file__).resolve().parents[1] / ".peers/perago061/bin/python"))
SCENARIOS = ("every file changed", "one file changed", "nothing changed")


# ----------------------------------------------------------------------------- child side


def _count_uploads() -> list[int]:
    """Count object uploads (POST …/branches/…/objects?path=…) at the urllib3 level, for both versions."""
    import urllib3

    counter = [0]
    original = urllib3.PoolManager.urlopen

    def counting(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        if method == "POST" and "/objects?" in url and "/branches/" in url:
            counter[0] += 1
        return original(self, method, url, *args, **kwargs)

    urllib3.PoolManager.urlopen = counting  # type: ignore[method-assign]
    return counter


def _body(scenario: str):  # type: ignore[no-untyped-def]
    def change(root: Path) -> None:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        targets = {SCENARIOS[0]: files, SCENARIOS[1]: files[:1]}.get(scenario, [])
        for path in targets:
            with open(path, "r+b") as handle:
                first = handle.read(1)
                handle.seek(0)
                handle.write(bytes([(first[0] + 1) % 256]) if first else b"x")

    return change


def _attempt(task_id: str):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    return SimpleNamespace(
        workflow_instance_id=f"wf-{task_id}", reference_task_name="bench", seq=1, iteration=0,
        task_id=task_id, retry_count=0, task_def_name="bench", status="IN_PROGRESS", execution_id=task_id,
    )


def prepare_perago(env: dict[str, str], repo: str, branch: str, ref: str, scenario: str, workdir: Path):  # type: ignore[no-untyped-def]
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

    def attempt() -> str:
        output = run_workspace_attempt(
            workspace={"repository": repo, "branch": branch, "refType": "commit", "ref": ref},
            spec=spec,
            attempt=_attempt(branch),
            execution_id=os.urandom(16).hex(),
            attempt_dir=workdir,
            runtime=runtime,
            fence=lambda: None,
            run_body=_body(scenario),
        )
        return output["workspace"]["ref"]

    return attempt


def prepare_perago061(env: dict[str, str], repo: str, branch: str, ref: str, scenario: str, workdir: Path):  # type: ignore[no-untyped-def]
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
    workspace = WorkspaceInput.model_validate({"repository": repo, "branch": branch, "refType": "commit", "ref": ref})
    spec = WorkspaceSpec(prefix="/data")

    def attempt() -> str:
        task = _attempt(branch)
        root = workdir / "ws"
        root.mkdir()
        runtime.download_workspace(workspace, spec, root)
        before = _snapshot_workspace(root)
        _body(scenario)(root)
        if _snapshot_workspace(root) == before:
            return runtime.complete_noop_workspace(workspace, spec, task)
        staged = runtime.stage_workspace(root, workspace, spec, task)
        try:
            return runtime.publish_workspace(staged, workspace, spec, task)
        finally:
            runtime.cleanup_staging(staged)

    return attempt


def child_main(argv: list[str]) -> None:
    implementation, repo, branch, ref, scenario = argv
    env = dict(os.environ)
    uploads = _count_uploads()
    prepare = prepare_perago if implementation == "perago" else prepare_perago061
    with tempfile.TemporaryDirectory(prefix="perago-bench-") as scratch:
        attempt = prepare(env, repo, branch, ref, scenario, Path(scratch))
        started, cpu_started = time.perf_counter(), time.process_time()
        published = attempt()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"seconds": seconds, "cpu": cpu, "uploads": uploads[0], "ref": published}))


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
        path = scratch / f"seed-{index}.bin"
        path.write_bytes(os.urandom(kib * 1024))
        client.upload_object(
            repo, "main", f"data/d{index % 20:02d}/f{index:04d}.bin", path, kib * 1024,
            content_type=None, metadata={},
        )
        path.unlink()

    run_bounded(upload, range(files), 8)
    commit = client.commit(repo, "main", "seed", {})
    return repo, commit.id


def measure(
    python: str, implementation: str, env: dict[str, str], repo: str, ref: str, scenario: str
) -> dict[str, object]:
    from perago.workspace.lakefs_client import LakeFSClient

    client = LakeFSClient(
        env["LAKECTL_SERVER_ENDPOINT_URL"],
        env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )
    branch = f"bench-{implementation.replace('.', '')}-{SCENARIOS.index(scenario)}-{os.urandom(3).hex()}"
    client.create_branch(repo, branch, ref, hidden=False)
    child = subprocess.run(
        [python, __file__, "--child", implementation, repo, branch, ref, scenario],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"{implementation} failed:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    head = client.get_commit(repo, branch)
    expected_parents = (ref,) if scenario != SCENARIOS[2] else head.parents
    if head.id != result["ref"] or head.parents != expected_parents:
        raise RuntimeError(f"{implementation} published {result['ref']}, head {head.id} parents {head.parents}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest is reported")
    args = parser.parse_args()
    if not Path(ORACLE_PYTHON).exists():
        sys.exit(f"perago 0.6.1 oracle interpreter not found at {ORACLE_PYTHON} (set PERAGO_ORACLE_PYTHON)")
    with tempfile.TemporaryDirectory(prefix="perago-bench-lakefs-") as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "data").mkdir()
        emulator, env = start_emulator(scratch / "data")
        try:
            repo, ref = seed(env, args.files, args.kib, scratch)
            total_mb = args.files * args.kib / 1024
            print(f"workspace: {args.files} files, {total_mb:.0f} MB; download + body + publish, one child process each")
            print(f"{'scenario':<20} {'implementation':<15} {'seconds':>8} {'client CPU s':>13} {'uploads':>8}")
            for scenario in SCENARIOS:
                timings = {}
                for implementation, python in (("perago", sys.executable), ("perago 0.6.1", ORACLE_PYTHON)):
                    runs = [
                        measure(python, implementation.replace(" ", ""), env, repo, ref, scenario)
                        for _ in range(max(1, args.repeat))
                    ]
                    result = min(runs, key=lambda run: run["seconds"])
                    timings[implementation] = result["seconds"]
                    print(
                        f"{scenario:<20} {implementation:<15} {result['seconds']:>8.2f} "
                        f"{result['cpu']:>13.2f} {result['uploads']:>8}"
                    )
                ratio = timings["perago 0.6.1"] / timings["perago"]
                print(f"{scenario:<20} {'speed-up':<15} {ratio:>7.1f}x")
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
