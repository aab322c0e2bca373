"""Thread mode end to end on the emulator: results, bad input, faults, leases during retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from perago.attempt import AttemptRunner
from perago.conductor import ConductorClient
from perago.conductor.backoff import Backoff
from perago.runners.thread import ThreadRunner
from perago.testing.conductor import ConductorEmulator, FaultPlan, FaultRule

from .conductor_admin import ConductorAdmin
from .workers.echo import echo

FAST = Backoff(base_seconds=0.01, cap_seconds=0.1)


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    captured: list[dict[str, Any]] = []
    sink = logger.add(lambda message: captured.append(message.record), level="INFO")
    yield captured
    logger.remove(sink)


class RunningRunner:
    """A ThreadRunner on a background thread, stopped (drained) on exit."""

    def __init__(self, emulator: ConductorEmulator, threads: int = 4) -> None:
        client = ConductorClient(emulator.url, worker_id="runtimeechoBroker@testhost", update_retry_backoff=FAST)
        attempts = AttemptRunner(echo.__perago_task__, worker_id="runtimeechoBroker", failure_reason_max_length=500)
        self.runner = ThreadRunner(attempts, client, threads=threads, poll_error_backoff=FAST)
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.exit_code = self.runner.run(install_signal_handlers=False)

    def __enter__(self) -> ThreadRunner:
        self.thread.start()
        return self.runner

    def __exit__(self, *exc_info: object) -> None:
        self.runner.request_stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the thread runner did not drain"
        assert self.exit_code == 0


def test_many_workflows_complete_with_their_own_output() -> None:
    with ConductorEmulator() as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.echo")
        workflow_ids = [admin.start(flow, {"text": f"w{index}", "count": index}) for index in range(150)]
        with RunningRunner(emulator, threads=4):
            workflows = admin.wait_for_workflows(workflow_ids)
        assert [w["status"] for w in workflows] == ["COMPLETED"] * 150
        assert [w["output"]["result"] for w in workflows] == [
            {"text": f"w{index}", "doubled": 2 * index} for index in range(150)
        ]


def test_bad_input_fails_that_task_only_and_names_the_field(records: list[dict[str, Any]]) -> None:
    with ConductorEmulator() as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.echo")
        inputs = [
            {"text": "ok-1", "count": 1},
            {"text": "bad", "count": "hunter2"},
            {"text": "fail", "count": 1},
            {"text": "exit", "count": 1},
            {"text": "ok-2", "count": 2},
        ]
        workflow_ids = [admin.start(flow, params) for params in inputs]
        with RunningRunner(emulator, threads=2) as runner:
            workflows = admin.wait_for_workflows(workflow_ids)
            later = admin.start(flow, {"text": "after", "count": 5})
            (after,) = admin.wait_for_workflows([later])
        assert [w["status"] for w in workflows] == ["COMPLETED", "FAILED", "FAILED", "FAILED", "COMPLETED"]
        assert after["status"] == "COMPLETED" and after["output"]["result"] == {"text": "after", "doubled": 10}
        reasons = [w.get("reasonForIncompletion", "") for w in workflows]
        bad_reason = admin.workflow(workflow_ids[1])["tasks"][0]["reasonForIncompletion"]
        assert "count" in bad_reason and "int_parsing" in bad_reason and "hunter2" not in bad_reason
        assert "asked to fail" in reasons[2]
        assert "SystemExit: 3" in admin.workflow(workflow_ids[3])["tasks"][0]["reasonForIncompletion"]
        assert runner.in_flight() == 0
        assert not any("hunter2" in json.dumps(r["extra"], default=str) for r in records)


@pytest.mark.parametrize(
    "rules",
    [
        [FaultRule(endpoint="update_v2", error_rate=0.3), FaultRule(endpoint="batch_poll", error_rate=0.2)],
        [FaultRule(endpoint="update_v2", drop_before_rate=0.3), FaultRule(endpoint="batch_poll", drop_before_rate=0.2)],
        [FaultRule(endpoint="update_v2", drop_after_rate=0.2)],
    ],
    ids=["5xx", "dropped-before-applied", "dropped-after-applied"],
)
def test_faults_are_survived_and_no_result_is_silently_dropped(
    rules: list[FaultRule], records: list[dict[str, Any]]
) -> None:
    faults = FaultPlan(seed=11)
    with ConductorEmulator(faults=faults) as emulator:
        admin = ConductorAdmin(emulator.url)
        # A task handed out in an answer that was dropped comes back after its response
        # timeout as a retry: that is Conductor's recovery, and it must suffice.
        flow = admin.setup_single_task_workflow(
            "runtime.echo", responseTimeoutSeconds=2, retryCount=3, retryDelaySeconds=0
        )
        workflow_ids = [admin.start(flow, {"text": f"w{index}", "count": index}) for index in range(40)]
        faults.rules.extend(rules)
        with RunningRunner(emulator, threads=4):
            workflows = admin.wait_for_workflows(workflow_ids, timeout=90)
        assert [w["status"] for w in workflows] == ["COMPLETED"] * 40
        assert [w["output"]["result"]["doubled"] for w in workflows] == [2 * index for index in range(40)]
        assert not [r for r in records if r["message"] == "task result undeliverable"]


def test_leases_are_kept_while_an_update_is_being_retried(records: list[dict[str, Any]]) -> None:
    faults = FaultPlan(seed=5)
    with ConductorEmulator(faults=faults) as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.echo", responseTimeoutSeconds=3)
        faults.rules.extend(
            [FaultRule(endpoint="update_v2", error_rate=1.0), FaultRule(endpoint="update", error_rate=1.0)]
        )
        (workflow_id,) = [admin.start(flow, {"text": "slow-to-report", "count": 1})]
        with RunningRunner(emulator, threads=1):
            deadline = time.monotonic() + 10
            while not [r for r in records if r["message"] == "task result update failed; retrying"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            # Conductor refuses results for longer than the 3 s response timeout; only lease
            # extensions (plain updates with extendLease) get through.
            faults.rules[:] = [FaultRule(endpoint="update_v2", error_rate=1.0)]
            time.sleep(4.5)
            faults.rules.clear()
            (workflow,) = admin.wait_for_workflows([workflow_id])
        assert workflow["status"] == "COMPLETED"
        assert workflow["tasks"][0]["retryCount"] == 0
