"""Spawning, identities, inherited fds, process titles and clean drains of the process tree."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from supervisor_harness import Runtime, pid_alive


def socket_fds(pid: int) -> int:
    fd_dir = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fd_dir.iterdir() if os.readlink(fd).startswith("socket:"))


def test_all_children_start_with_worker_ids_titles_and_only_their_own_sockets(
    start_runtime,
) -> None:
    runtime: Runtime = start_runtime(process_count=3)
    runtime.wait_all_ready(3)
    ready = runtime.events("executor_ready")
    assert sorted(e["worker_id"] for e in ready) == [
        "testWorker0001",
        "testWorker0002",
        "testWorker0003",
    ]
    assert {e["generation"] for e in ready} == {1}
    for event in ready:
        cmdline = (
            Path(f"/proc/{event['pid']}/cmdline").read_bytes().split(b"\0")[0].decode()
        )
        assert cmdline == f"perago executor {event['worker_id']}"
        assert socket_fds(event["pid"]) == 1, (
            "an executor holds its own slot socket and nothing else"
        )
    broker_pid = runtime.events("broker_ready")[0]["pid"]
    assert (
        Path(f"/proc/{broker_pid}/cmdline")
        .read_bytes()
        .startswith(b"perago broker testWorkerBroker")
    )
    runtime.wait_event("slot_socket", count=3)
    assert socket_fds(broker_pid) == 1 + 3, (
        "the broker holds the control socket and one end per slot"
    )
    started = runtime.logs("worker process started")
    assert [r["worker_id"] for r in started] == [
        "testWorkerBroker",
        "testWorker0001",
        "testWorker0002",
        "testWorker0003",
    ]
    # One warm spare besides them, started once they were all up; it holds one socket of
    # its own (not the broker's) and has no worker id of its own.
    spare = runtime.wait_log("spare executor warm")[0]
    assert spare["role"] == "spare" and spare["worker_id"] == "testWorkerSpare"
    assert spare["pid"] not in {e["pid"] for e in ready}
    assert (
        Path(f"/proc/{spare['pid']}/cmdline").read_bytes().split(b"\0")[0].decode()
        == "perago spare testWorkerSpare"
    )
    assert socket_fds(spare["pid"]) == 1
    assert "PERAGO_WORKER_ID=" not in Path(f"/proc/{spare['pid']}/environ").read_text()

    runtime.send(signal.SIGTERM)
    assert runtime.exit_code() == 0
    assert len(runtime.events("executor_stop", closed=False)) == 3
    assert runtime.events("spare_stopped"), "a drain stops the spare too"
    assert not pid_alive(spare["pid"])
    assert runtime.events("broker_drained")
    for event in ready:
        assert not pid_alive(event["pid"])
    assert runtime.logs("supervisor stopped")[0]["reason"] == "signal"
    assert not (runtime.root / ".perago-supervisor.lock").exists()
