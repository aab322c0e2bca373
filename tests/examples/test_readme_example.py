"""The README's task module is `examples/perago_examples/greet.py`, and its commands work
as written: `check` and `extract` on it, then `perago start` serving a real workflow on the
Conductor emulator. If the README or the example drifts, this fails."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from perago.demo.run import load_demo_task
from perago.taskdef import build_taskdef
from perago.testing.conductor import ConductorEmulator

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PERAGO = Path(sys.executable).with_name("perago")
CONFIG_PREFIXES = ("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")


def readme_blocks(language: str) -> list[str]:
    section = README.read_text().split("\n## A task module\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def readme_commands() -> list[str]:
    (block,) = readme_blocks("bash")
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def clean_environment(work: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(CONFIG_PREFIXES)}
    env["PERAGO_WORKSPACE_ROOT"] = str(work / "workspaces")
    env["PERAGO_LOG_ROOT"] = str(work / "logs")
    return env


def test_readme_task_module_is_the_example_file_verbatim() -> None:
    (block,) = readme_blocks("python")
    path_comment = block.splitlines()[0]
    assert path_comment.startswith("# examples/"), path_comment
    assert (REPO / path_comment.removeprefix("# ")).read_text() == block


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """Run from a directory laid out like the repository root (its `examples/`), line by line."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = clean_environment(tmp_path)
    commands = readme_commands()
    exports = [command for command in commands if command.startswith("export ")]
    perago_commands = [shlex.split(command) for command in commands if command.startswith("perago ")]
    assert len(exports) + len(perago_commands) == len(commands), commands
    for export in exports:
        name, value = export.removeprefix("export ").split("=", 1)
        env[name] = value
    *one_shot, start = perago_commands
    assert start[:2] == ["perago", "start"], start

    for argv in one_shot:
        done = subprocess.run(
            [str(PERAGO), *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    assert (
        "ok: examples.greet"
        in subprocess.run(
            [str(PERAGO), "check", start[2]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    )
    written = json.loads((tmp_path / "greet.json").read_text())
    assert written == build_taskdef(load_demo_task())

    with ConductorEmulator() as conductor, httpx.Client(base_url=conductor.url, timeout=10) as api:
        assert api.post("/metadata/taskdefs", json=[written]).status_code == 200
        flow = {
            "name": "readme_greet", "version": 1, "schemaVersion": 2,
            "tasks": [{"name": written["name"], "taskReferenceName": "greet", "type": "SIMPLE",
                       "inputParameters": {"params": "${workflow.input.params}"}}],
            "outputParameters": {"text": "${greet.output.result.text}"},
        }  # fmt: skip
        assert api.post("/metadata/workflow", json=flow).status_code == 200
        workflow_ids = [
            api.post("/workflow/readme_greet", json={"params": {"name": name}}).text for name in ("Ada", "Linus")
        ]
        env["CONDUCTOR_SERVER_URL"] = conductor.url
        worker = subprocess.Popen(
            [str(PERAGO), *start[1:]], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            workflows = [api.get(f"/workflow/{workflow_id}").json() for workflow_id in workflow_ids]
            while (
                any(w["status"] == "RUNNING" for w in workflows)
                and time.monotonic() < deadline
                and worker.poll() is None
            ):
                time.sleep(0.1)
                workflows = [api.get(f"/workflow/{workflow_id}").json() for workflow_id in workflow_ids]
        finally:
            worker.send_signal(signal.SIGTERM)
            said, _ = worker.communicate(timeout=60)
        assert [(w["status"], w["output"]) for w in workflows] == [
            ("COMPLETED", {"text": "hello Ada"}),
            ("COMPLETED", {"text": "hello Linus"}),
        ], said.decode(errors="replace")
        assert worker.returncode == 0, said.decode(errors="replace")
