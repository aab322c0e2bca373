"""perago's Conductor client against the emulator: polls, updates, fallback, retries, auth, leases."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loguru import logger

from perago.conductor import (
    ConductorAuthError,
    ConductorClient,
    ConductorTransportError,
    LeaseKeeper,
    conductor_worker_id,
)
from perago.conductor.auth import TokenAuth
from perago.conductor.backoff import Backoff, empty_poll_pause
from perago.conductor.lease import lease_interval
from perago.conductor.transport import HttpTransport, ServerAddress
from perago.testing.conductor import ConductorEmulator, FaultPlan, FaultRule, ManualClock

from .conductor_admin import ConductorAdmin

FAST_RETRY = Backoff(base_seconds=0.01, cap_seconds=0.05)
TASK = "client_echo"


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    captured: list[dict[str, Any]] = []
    sink = logger.add(lambda message: captured.append(message.record), level="DEBUG")
    yield captured
    logger.remove(sink)


_OPEN_CLIENTS: list[ConductorClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def client_for(emulator: ConductorEmulator, **options: Any) -> ConductorClient:
    options.setdefault("update_retry_backoff", FAST_RETRY)
    _OPEN_CLIENTS.append(ConductorClient(emulator.url, worker_id="clientechoBroker@testhost", **options))
    return _OPEN_CLIENTS[-1]


def completed_json(task: dict[str, Any], worker_id: str = "clientechoBroker@testhost") -> bytes:
    return json.dumps(
        {
            "workflowInstanceId": task["workflowInstanceId"],
            "taskId": task["taskId"],
            "workerId": worker_id,
            "status": "COMPLETED",
            "outputData": {"result": {"seen": task["inputData"]["params"]}},
            "extendLease": False,
        }
    ).encode()


def start_workflows(emulator: ConductorEmulator, count: int, **taskdef_fields: Any) -> tuple[ConductorAdmin, list[str]]:
    admin = ConductorAdmin(emulator.url)
    flow = admin.setup_single_task_workflow(TASK, **taskdef_fields)
    return admin, [admin.start(flow, {"n": index}) for index in range(count)]


def poll_all(client: ConductorClient, expected: int) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(tasks) < expected and time.monotonic() < deadline:
        tasks += client.poll_batch(TASK, expected - len(tasks))
    return tasks


def serve_with_client(
    client: ConductorClient, expected: int, *, tolerate_poll_errors: bool = False, seconds: float = 20
) -> int:
    """Complete up to `expected` tasks through `deliver_result`, following update-v2 chains."""
    done, deadline = 0, time.monotonic() + seconds
    while done < expected and time.monotonic() < deadline:
        try:
            tasks = client.poll_batch(TASK, 4)
        except ConductorTransportError:
            if not tolerate_poll_errors:
                raise
            continue
        for polled in tasks:
            task: dict[str, Any] | None = polled
            while task is not None:
                delivery = client.deliver_result(
                    completed_json(task), task_id=task["taskId"], workflow_instance_id=task["workflowInstanceId"]
                )
                assert delivery.delivered
                done += 1
                task = json.loads(delivery.next_task) if delivery.next_task else None
    return done


def test_batch_poll_hands_out_at_most_count_tasks_to_our_worker_id() -> None:
    with ConductorEmulator() as emulator:
        admin, _ = start_workflows(emulator, 5)
        client = client_for(emulator)
        tasks = client.poll_batch(TASK, 3)
        assert 1 <= len(tasks) <= 3
        assert all(admin.task(task["taskId"])["workerId"] == client.worker_id for task in tasks)
        assert json.loads(client.poll_batch_raw(TASK, 10)) != []


def test_an_empty_queue_answers_an_empty_list_quickly() -> None:
    with ConductorEmulator() as emulator:
        ConductorAdmin(emulator.url).register_task(TASK)
        client = client_for(emulator, poll_timeout_ms=50)
        started = time.monotonic()
        assert client.poll_batch(TASK, 4) == []
        assert time.monotonic() - started < 5
        assert client.poll_batch_raw(TASK, 0) == b"[]"


def test_update_v2_completes_and_hands_back_the_next_task() -> None:
    with ConductorEmulator() as emulator:
        admin, workflow_ids = start_workflows(emulator, 2)
        client = client_for(emulator)
        (first,) = client.poll_batch(TASK, 1)
        delivery = client.deliver_result(
            completed_json(first), task_id=first["taskId"], workflow_instance_id=first["workflowInstanceId"]
        )
        assert delivery.delivered and delivery.next_task is not None
        second = json.loads(delivery.next_task)
        assert second["taskId"] != first["taskId"] and second["status"] == "IN_PROGRESS"
        assert client.deliver_result(
            completed_json(second), task_id=second["taskId"], workflow_instance_id=second["workflowInstanceId"]
        ).delivered
        workflows = admin.wait_for_workflows(workflow_ids)
        assert sorted(w["output"]["result"]["seen"]["n"] for w in workflows) == [0, 1]
        assert client.uses_update_v2


@pytest.mark.parametrize(
    "server", [{"update_v2_status": 404}, {"update_v2_status": 405}, {"update_v2_status": 501}, {"server_version": "3.21.11"}]
)
def test_a_server_without_update_v2_gets_plain_updates_for_good(server: dict[str, Any]) -> None:
    with ConductorEmulator(**server) as emulator:
        admin, workflow_ids = start_workflows(emulator, 3)
        client = client_for(emulator)
        paths: list[str] = []
        send = client._transport.request

        def spy(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
            paths.append(path)
            return send(method, path, body, headers)

        client._transport.request = spy  # type: ignore[method-assign]
        assert serve_with_client(client, 3) == 3
        workflows = admin.wait_for_workflows(workflow_ids)
        assert [workflow["status"] for workflow in workflows] == ["COMPLETED"] * 3
        assert not client.uses_update_v2
        assert paths.count("/tasks/update-v2") == 1
        assert paths.count("/tasks") == 3


def test_a_genuine_not_found_neither_disables_v2_nor_retries(records: list[dict[str, Any]]) -> None:
    with ConductorEmulator() as emulator:
        admin, (workflow_id,) = start_workflows(emulator, 1)
        client = client_for(emulator)
        (task,) = poll_all(client, 1)
        ghost = {**task, "taskId": "no-such-task"}
        delivery = client.deliver_result(completed_json(ghost), task_id="no-such-task", workflow_instance_id=workflow_id)
        assert not delivery.delivered
        assert client.uses_update_v2
        assert not [r for r in records if r["message"] == "task result update failed; retrying"]
        (lost,) = [r for r in records if r["message"] == "task result undeliverable"]
        assert lost["extra"]["task_id"] == "no-such-task" and lost["extra"]["attempts"] == 1
        assert "No such task found by id" in lost["extra"]["error"]
        assert json.loads(lost["extra"]["task_result"])["taskId"] == "no-such-task"


def test_a_permanent_4xx_is_not_retried(records: list[dict[str, Any]]) -> None:
    with ConductorEmulator(update_v2_status=404) as emulator:
        start_workflows(emulator, 1)
        client = client_for(emulator)
        body = json.dumps({"workflowInstanceId": "", "taskId": "", "status": "COMPLETED"}).encode()
        assert not client.deliver_result(body, task_id="", workflow_instance_id="").delivered
        (lost,) = [r for r in records if r["message"] == "task result undeliverable"]
        assert "HTTP 400" in lost["extra"]["error"] and lost["extra"]["attempts"] == 1


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(endpoint="update_v2", error_rate=0.5),
        FaultRule(endpoint="update_v2", error_rate=0.3, error_status=500),
        FaultRule(endpoint="update_v2", drop_before_rate=0.4),
        FaultRule(endpoint="update_v2", drop_after_rate=0.4),
        FaultRule(endpoint="batch_poll", drop_before_rate=0.3),
    ],
    ids=["503", "500", "drop-before", "drop-after", "poll-drop"],
)
def test_updates_survive_server_errors_and_dropped_connections(rule: FaultRule) -> None:
    faults = FaultPlan(seed=7)
    with ConductorEmulator(faults=faults) as emulator:
        admin, workflow_ids = start_workflows(emulator, 12)
        faults.rules.append(rule)
        client = client_for(emulator)
        done = serve_with_client(client, 12, tolerate_poll_errors=True, seconds=3)
        faults.rules.clear()
        statuses = [admin.workflow(workflow_id)["status"] for workflow_id in workflow_ids]
        if rule.drop_after_rate:
            # A dropped update-v2 answer can lose the task it handed out: it stays
            # IN_PROGRESS until Conductor's response timeout re-queues it; nothing fails.
            assert set(statuses) <= {"COMPLETED", "RUNNING"} and statuses.count("COMPLETED") == done
        else:
            assert statuses == ["COMPLETED"] * 12


def test_retrying_stops_when_the_budget_is_spent(records: list[dict[str, Any]]) -> None:
    faults = FaultPlan(seed=1)
    with ConductorEmulator(faults=faults) as emulator:
        start_workflows(emulator, 1)
        client = client_for(emulator, update_give_up_after_seconds=0.3)
        (task,) = poll_all(client, 1)
        faults.rules.append(FaultRule(endpoint="update_v2", error_rate=1.0))
        delivery = client.deliver_result(
            completed_json(task), task_id=task["taskId"], workflow_instance_id=task["workflowInstanceId"]
        )
        assert not delivery.delivered
        (lost,) = [r for r in records if r["message"] == "task result undeliverable"]
        assert lost["extra"]["attempts"] > 1 and "HTTP 503" in lost["extra"]["error"]


def test_token_auth_fetches_renews_and_replays() -> None:
    clock = ManualClock()
    with ConductorEmulator(auth_keys={"key-1": "s3cret"}, token_ttl_seconds=3600, clock=clock) as emulator:
        client = client_for(emulator, auth_key_id="key-1", auth_key_secret="s3cret")
        paths: list[str] = []
        send = client._transport.request

        def spy(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
            paths.append(path)
            return send(method, path, body, headers)

        client._transport.request = spy  # type: ignore[method-assign]
        assert client.taskdef_exists("nothing-here") is False
        assert client.poll_batch(TASK, 1) == []
        assert paths.count("/token") == 1
        clock.advance(2 * 3600)  # the server now answers 401 EXPIRED_TOKEN for our token
        assert client.poll_batch(TASK, 1) == []
        assert paths.count("/token") == 2
        assert paths[-3:] == [paths[-3], "/token", paths[-3]]  # rejected call, renewal, replay

        wrong = client_for(emulator, auth_key_id="key-1", auth_key_secret="nope")
        with pytest.raises(ConductorAuthError, match="CONDUCTOR_AUTH_KEY") as refused:
            wrong.poll_batch(TASK, 1)
        assert "nope" not in str(refused.value)

        anonymous = client_for(emulator)
        with pytest.raises(ConductorAuthError):
            anonymous.poll_batch(TASK, 1)


def test_credentials_against_a_server_without_auth_switch_auth_off() -> None:
    with ConductorEmulator() as emulator:
        ConductorAdmin(emulator.url).register_task(TASK)
        client = client_for(emulator, auth_key_id="k", auth_key_secret="s")
        assert client.taskdef_exists(TASK)
        assert client._auth is not None and client._auth.disabled


def test_taskdef_exists_and_get_task() -> None:
    with ConductorEmulator() as emulator:
        admin, _ = start_workflows(emulator, 1)
        client = client_for(emulator)
        assert client.taskdef_exists(TASK) and not client.taskdef_exists("other.task")
        (task,) = poll_all(client, 1)
        assert client.get_task(task["taskId"])["status"] == "IN_PROGRESS"


def test_leases_keep_a_slow_task_alive_and_only_that_one() -> None:
    with ConductorEmulator() as emulator:
        admin, workflow_ids = start_workflows(emulator, 2, responseTimeoutSeconds=3)
        client = client_for(emulator)
        kept, abandoned = poll_all(client, 2)
        keeper = LeaseKeeper(client.extend_lease).start()
        keeper.track(kept["taskId"], kept["workflowInstanceId"], kept["responseTimeoutSeconds"])
        time.sleep(4.0)  # two heartbeats (every 2.4 s) for the kept task; the other times out at 3 s
        assert admin.task(kept["taskId"])["status"] == "IN_PROGRESS"
        assert admin.task(abandoned["taskId"])["status"] == "TIMED_OUT"
        keeper.untrack(kept["taskId"])
        keeper.stop()
        assert client.deliver_result(
            completed_json(kept), task_id=kept["taskId"], workflow_instance_id=kept["workflowInstanceId"]
        ).delivered
        assert admin.workflow(kept["workflowInstanceId"])["status"] == "COMPLETED"


def test_lease_interval_follows_the_sdk_rule() -> None:
    assert lease_interval(600) == 480
    assert lease_interval(1.25) == 1.0
    assert lease_interval(1) is None and lease_interval(0) is None and lease_interval(None) is None


def test_conductor_worker_id_names_the_host() -> None:
    assert conductor_worker_id("featuresBuild", "worker-7.prod.example") == "featuresBuildBroker@worker-7"
    assert conductor_worker_id("x", "") == "xBroker@unknown-host"


@given(failures=st.integers(min_value=1, max_value=200), base=st.floats(0.001, 5), cap=st.floats(5, 200))
def test_backoff_grows_but_stays_under_the_cap(failures: int, base: float, cap: float) -> None:
    backoff = Backoff(base, cap)
    step = min(cap, base * 2 ** (failures - 1))
    assert step / 2 <= backoff.delay(failures) <= step


def test_empty_poll_pacing_is_capped_at_100_ms() -> None:
    assert [empty_poll_pause(k) for k in (0, 1, 2)] == [0.0, 0.002, 0.004]
    assert empty_poll_pause(50) == 0.1


def test_tokens_are_renewed_after_45_minutes() -> None:
    now = [1000.0]
    with ConductorEmulator(auth_keys={"key-1": "s3cret"}) as emulator:
        transport = HttpTransport(ServerAddress.parse(emulator.url))
        fetched: list[str] = []
        send = transport.request

        def spy(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
            fetched.append(path)
            return send(method, path, body, headers)

        transport.request = spy  # type: ignore[method-assign]
        auth = TokenAuth(transport, "key-1", "s3cret", clock=lambda: now[0])
        first = auth.headers()
        assert auth.headers() == first and fetched == ["/token"]
        now[0] += 44 * 60
        assert auth.headers() == first and fetched == ["/token"]
        now[0] += 2 * 60
        auth.headers()
        assert fetched == ["/token", "/token"]
        transport.close()


def test_foreign_conductor_worker_variables_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CONDUCTOR_WORKER_ALL_DOMAIN": "elsewhere",
        "CONDUCTOR_WORKER_ALL_WORKER_ID": "impostor",
        "CONDUCTOR_WORKER_ALL_PAUSED": "true",
        "conductor.worker.all.domain": "elsewhere",
    }.items():
        monkeypatch.setenv(name, value)
    with ConductorEmulator() as emulator:
        admin, _ = start_workflows(emulator, 1)
        client = client_for(emulator)
        (task,) = poll_all(client, 1)
        assert admin.task(task["taskId"])["workerId"] == "clientechoBroker@testhost"
        assert "domain" not in task


def test_untracked_leases_do_not_pile_up() -> None:
    keeper = LeaseKeeper(lambda task_id, workflow_id: None)
    for index in range(10_000):
        keeper.track(f"t{index}", "wf", 600)
        keeper.untrack(f"t{index}")
    keeper.track("kept", "wf", 600)
    assert keeper.tracked() == 1
    assert len(keeper._heap) <= 1025
