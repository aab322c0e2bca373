"""The slot channel as the executor sees it (fence RPC over the slot socket), and the
Python-side validation in front of the Rust loop."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest
from perago import _core
from perago.errors import RuntimeConfigError
from perago.supervisor import SupervisorSettings, report_outcome
from supervisor_harness import Runtime


def test_fence_request_is_answered_on_the_slot_socket_and_can_time_out(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(
        process_count=2,
        tasks=[{"fence": "task-7"}, {"fence": "ignore me", "fence_timeout": 0.3}],
    )
    completes = runtime.wait_event("complete", count=2)
    fences = sorted(c["result"]["fence"] for c in completes)
    assert (
        fences[0]
        == "TimeoutError: broker did not answer the fence request for dispatch 2"
    )
    assert fences[1] == "fresh copy of task-7"
    assert sorted(e["request"] for e in runtime.events("fence_request")) == [
        "ignore me",
        "task-7",
    ]
    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0


def settings(**overrides: object) -> SupervisorSettings:
    values: dict[str, object] = {
        "workspace_root": Path("/tmp/unused"),
        "worker_id_prefix": "feat",
        "process_count": 2,
        "broker_command": ["python", "-m", "perago.broker"],
        "executor_command": ["python", "-m", "perago.executor"],
        "env": {},
    }
    values.update(overrides)
    return SupervisorSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"process_count": 0}, "worker process count must be at least 1"),
        ({"process_count": True}, "worker process count must be at least 1"),
        ({"worker_id_prefix": "  "}, "PERAGO_WORKER_ID_PREFIX must not be empty"),
        (
            {"worker_id_prefix": "feat-1"},
            "PERAGO_WORKER_ID_PREFIX must contain only ASCII letters and digits",
        ),
        (
            {"executor_command": "python -m perago.executor"},
            "executor_command must be a non-empty list of strings",
        ),
        ({"broker_command": []}, "broker_command must be a non-empty list of strings"),
        (
            {"gc_interval": timedelta(0)},
            "PERAGO_WORKSPACE_GC_INTERVAL must be positive",
        ),
        (
            {"force_kill_after": timedelta(0)},
            "PERAGO_SHUTDOWN_FORCE_KILL_AFTER must be positive",
        ),
        ({"env": {"A": 1}}, "child environment must map str to str"),
    ],
)
def test_settings_are_validated_before_anything_starts(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(RuntimeConfigError, match=message):
        settings(**overrides)


def test_prefix_is_stripped() -> None:
    assert settings(worker_id_prefix=" feat ").worker_id_prefix == "feat"


def test_outside_the_supervisor_the_channels_say_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PERAGO_SLOT_FD", raising=False)
    with pytest.raises(
        RuntimeConfigError,
        match="PERAGO_SLOT_FD is not set; was this process started by the perago supervisor",
    ):
        _core.ExecutorChannel.from_env()
    monkeypatch.setenv("PERAGO_CONTROL_FD", "0")
    with pytest.raises(
        RuntimeConfigError, match="PERAGO_CONTROL_FD=0 is not an open socket"
    ):
        _core.BrokerControl.from_env()


def test_clean_outcome_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    class Outcome:
        exit_code = 0
        message = "stopped by SIGTERM"
        stderr_tail = ()

    assert report_outcome(Outcome()) == 0  # type: ignore[arg-type]
    assert capsys.readouterr().err == ""


def test_perago_start_plan_maps_to_supervisor_settings(tmp_path: Path) -> None:
    from perago.config import RuntimeConfig
    from perago.launch import StartPlan
    from perago.supervisor import settings_for_plan

    config = RuntimeConfig(
        workspace_root=tmp_path / "ws",
        log_root=tmp_path / "logs",
        log_file_max_size=1000,
        log_retention=timedelta(days=1),
        worker_id_prefix="featuresBuild",
        workspace_gc_ttl=timedelta(hours=2),
        workspace_gc_interval=timedelta(minutes=5),
        shutdown_force_kill_after=timedelta(seconds=40),
    )
    plan = StartPlan(
        "app.workers.features_build", config, task=None, execution_mode="process"
    )  # type: ignore[arg-type]
    mapped = settings_for_plan(plan, processes=8)
    assert (mapped.workspace_root, mapped.worker_id_prefix, mapped.process_count) == (
        tmp_path / "ws",
        "featuresBuild",
        8,
    )
    assert mapped.executor_command[1:] == [
        "-m",
        "perago.executor",
        "app.workers.features_build",
    ]
    assert mapped.broker_command[1:] == [
        "-m",
        "perago.broker",
        "app.workers.features_build",
    ]
    assert (mapped.gc_ttl, mapped.gc_interval, mapped.force_kill_after) == (
        timedelta(hours=2),
        timedelta(minutes=5),
        timedelta(seconds=40),
    )


def test_supervisor_refuses_to_run_outside_the_main_thread() -> None:
    import threading

    from perago.supervisor import supervise

    errors: list[BaseException] = []

    def run() -> None:
        try:
            supervise(settings())
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert [str(e) for e in errors] == [
        "perago's supervisor must run in the main thread"
    ]


WAITING_EXECUTOR = """
import signal, sys
from perago import _core
channel = _core.ExecutorChannel.from_env()
stopped = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
print("waiting", flush=True)
while not stopped:
    if channel.recv(None) is not None:
        sys.exit(3)
print("handler ran", flush=True)
"""


def test_a_signal_ends_an_idle_executors_wait_and_runs_its_handler() -> None:
    """The executor waits for work in one blocking read; SIGTERM must still reach Python."""
    import os
    import socket
    import subprocess
    import sys

    broker_end, executor_end = socket.socketpair()
    with broker_end, executor_end, subprocess.Popen(
        [sys.executable, "-c", WAITING_EXECUTOR],
        env={**os.environ, "PERAGO_SLOT_FD": str(executor_end.fileno())},
        pass_fds=[executor_end.fileno()],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "waiting\n"
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
            assert child.stdout.read() == "handler ran\n"
        finally:
            child.kill()
