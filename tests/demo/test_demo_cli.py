"""`perago demo` as a user runs it: a subprocess, its table on stdout, its exit status."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONFIG_PREFIXES = ("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")


def demo_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "perago.cli", "demo", *options]


def user_environment(tmp_path: Path) -> dict[str, str]:
    """A user whose own settings point elsewhere: the demo must ignore them all."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(CONFIG_PREFIXES)}
    env["CONDUCTOR_SERVER_URL"] = "http://127.0.0.1:9/api"
    env["PERAGO_EXECUTION_MODE"] = "bogus"
    env["PERAGO_WORKSPACE_ROOT"] = str(tmp_path / "not-for-the-demo")
    (tmp_path / ".env").write_text("CONDUCTOR_SERVER_URL=http://127.0.0.1:9/api\n")
    return env


def table_rows(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\S+(?: \S+)?)\s{2,}(.*)$", stdout, flags=re.MULTILINE))


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_demo_runs_every_workflow_and_prints_the_summary_table(tmp_path: Path, mode: str) -> None:
    options = (
        ("--tasks", "50", "-j", "2") if mode == "process" else ("--tasks", "50", "-j", "2", "--execution-mode", mode)
    )
    done = subprocess.run(
        demo_command(*options), cwd=tmp_path, env=user_environment(tmp_path),
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"50 workflows of examples.greet (perago_examples.greet), {mode} mode, -j 2" in done.stdout
    rows = table_rows(done.stdout)
    assert rows["completed"] == "50 / 50"
    assert rows["failed"] == "0"
    assert rows["wrong output"] == "0"
    assert re.fullmatch(r"[\d,]+  \(first task start to last task end\)", rows["tasks/s"]), rows
    assert re.fullmatch(r"[\d,]+  \(workflows started by the demo; tasks/s cannot exceed it\)", rows["submitted/s"]), (
        rows
    )
    assert re.fullmatch(r"[\d,]+ ms  \(workflow start to end, queueing included\)", rows["latency p50"]), rows
    assert re.fullmatch(r"[\d,]+ ms", rows["latency p99"]), rows
    assert "50/50 done" in done.stderr
    assert not (tmp_path / "not-for-the-demo").exists()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_mid_run_stops_the_runtime_and_the_emulator(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        demo_command("--tasks", "100000", "-j", "2"), cwd=tmp_path, env=user_environment(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert demo.stderr is not None
        for line in demo.stderr:
            if line.startswith("perago demo: submitting"):
                break
        children = children_of(demo.pid)
        assert len(children) == 2, children  # the emulator and `perago start`
        time.sleep(0.5)
        demo.send_signal(signal.SIGINT)
        stdout, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, stderr
    assert "perago demo: interrupted" in stderr
    assert "killed" not in stderr  # the runtime drained by itself
    assert stdout == ""
    assert [pid for pid in children if alive(pid)] == []


def test_a_workflow_without_the_expected_result_makes_the_demo_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same run, but the demo expects a different greeting for workflow 3: exit status 1."""
    import perago.demo.run as demo_run

    for name, value in user_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    right = demo_run.expected_output
    monkeypatch.setattr(demo_run, "expected_output", lambda index: {"wrong": True} if index == 3 else right(index))
    assert demo_run.run_demo(tasks=5, processes=1) == 1
    rows = table_rows(capsys.readouterr().out)
    assert (rows["completed"], rows["failed"], rows["wrong output"]) == ("5 / 5", "0", "1")
