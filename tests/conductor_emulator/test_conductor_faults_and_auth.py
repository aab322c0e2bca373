"""Fault injection (off by default, per endpoint, seedable) and Orkes-style token auth."""

from __future__ import annotations

import httpx
import pytest
from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ConductorEmulator, FaultPlan, FaultRule, ManualClock


def _statuses(api: Api, requests: int) -> list[int | str]:
    seen: list[int | str] = []
    for _ in range(requests):
        try:
            seen.append(api.batch_poll("a", timeout=0).status_code)
        except httpx.TransportError:
            seen.append("dropped")
    return seen


def test_error_share_is_per_endpoint_and_seeded(clock: ManualClock) -> None:
    plan = FaultPlan([FaultRule("batch_poll", error_rate=0.5, error_status=502)], seed=7)
    with ConductorEmulator(clock=clock, faults=plan) as conductor:
        api = Api(conductor.url)
        first = _statuses(api, 40)
        assert api.client.get("/metadata/taskdefs").status_code == 200  # other endpoints untouched
        assert set(first) == {200, 502}
        injected = api.batch_poll("a", timeout=0)
        while injected.status_code != 502:
            injected = api.batch_poll("a", timeout=0)
        assert injected.json()["retryable"] is True and injected.json()["status"] == 502
        api.close()
    with ConductorEmulator(
        clock=clock, faults=FaultPlan([FaultRule("batch_poll", error_rate=0.5, error_status=502)], seed=7)
    ) as again:
        api = Api(again.url)
        assert _statuses(api, 40) == first  # same seed, same requests: same faults
        api.close()


def test_injected_error_does_not_apply_the_update(clock: ManualClock) -> None:
    with ConductorEmulator(clock=clock, faults=FaultPlan([FaultRule("update", error_rate=1.0)])) as conductor:
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a"))
        api.chain("wf", "a")
        api.start("wf")
        task = api.poll_one("a")
        assert api.update(task, "COMPLETED").status_code == 503
        assert api.task(task["taskId"])["status"] == "IN_PROGRESS"
        api.close()


def test_drop_before_and_after(clock: ManualClock) -> None:
    rules = [FaultRule("update", drop_after_rate=1.0), FaultRule("update_v2", drop_before_rate=1.0)]
    with ConductorEmulator(clock=clock, faults=FaultPlan(rules)) as conductor:
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a"))
        api.chain("wf", "a")
        first_id = api.start("wf")
        second_id = api.start("wf")
        first = api.poll_one("a")
        with pytest.raises(httpx.TransportError):
            api.update_v2(first, "COMPLETED")
        assert api.workflow(first_id)["status"] == "RUNNING"  # dropped before: not applied
        with pytest.raises(httpx.TransportError):
            api.update(first, "COMPLETED")
        assert api.workflow(first_id)["status"] == "COMPLETED"  # dropped after: applied, answer lost
        assert api.workflow(second_id)["status"] == "RUNNING"
        api.close()


def test_latency_and_redelivery(clock: ManualClock) -> None:
    rules = [FaultRule("batch_poll", redeliver_rate=1.0, latency_seconds=(0.05, 0.05))]
    with ConductorEmulator(clock=clock, faults=FaultPlan(rules)) as conductor:
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a"))
        api.chain("wf", "a")
        api.start("wf")
        first = api.poll_one("a", workerid="one")
        second = api.poll_one("a", workerid="two")
        assert second["taskId"] == first["taskId"] and second["pollCount"] == 2  # delivered twice
        api.close()


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        FaultRule("pol")
    with pytest.raises(ValueError, match="error_rate"):
        FaultRule("poll", error_rate=1.5)
    with pytest.raises(ValueError, match="error_status"):
        FaultRule("poll", error_status=404)


def test_no_auth_by_default_token_path_is_404(api: Api) -> None:
    answer = api.client.post("/token", json={"keyId": "k", "keySecret": "s"})
    assert answer.status_code == 404  # OSS: the SDK then disables auth for good


def test_orkes_token_auth(clock: ManualClock) -> None:
    with ConductorEmulator(clock=clock, auth_keys={"key": "secret"}, token_ttl_seconds=60) as conductor:
        client = httpx.Client(base_url=conductor.url)
        denied = client.get("/metadata/taskdefs")
        assert denied.status_code == 401 and denied.json()["error"] == "INVALID_TOKEN"
        assert client.post("/token", json={"keyId": "key", "keySecret": "wrong"}).status_code == 401
        token = client.post("/token", json={"keyId": "key", "keySecret": "secret"}).json()["token"]
        headers = {"X-Authorization": token}
        assert client.get("/metadata/taskdefs", headers=headers).status_code == 200
        assert httpx.get(conductor.url.removesuffix("/api") + "/health").status_code == 200  # health stays open
        clock.advance(60)
        expired = client.get("/metadata/taskdefs", headers=headers)
        assert expired.status_code == 401 and expired.json()["error"] == "EXPIRED_TOKEN"
        client.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's own models warn on serialisation
def test_sdk_client_authenticates_with_keys() -> None:
    from conductor.client.configuration.configuration import Configuration
    from conductor.client.configuration.settings.authentication_settings import AuthenticationSettings
    from conductor.client.http.models.task_def import TaskDef
    from conductor.client.orkes.orkes_metadata_client import OrkesMetadataClient

    with ConductorEmulator(auth_keys={"key": "secret"}) as conductor:
        settings = AuthenticationSettings(key_id="key", key_secret="secret")
        metadata = OrkesMetadataClient(Configuration(server_api_url=conductor.url, authentication_settings=settings))
        metadata.register_task_def(TaskDef(name="via_sdk"))
        assert metadata.get_task_def("via_sdk").name == "via_sdk"
        assert conductor.request_counts()["token"] >= 1


def test_torn_answer_is_applied_but_cut_mid_body(clock: ManualClock) -> None:
    import socket

    with ConductorEmulator(clock=clock, faults=FaultPlan([FaultRule("get_workflow", tear_answer_rate=1.0)])) as conductor:
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a"))
        api.chain("wf", "a")
        workflow_id = api.start("wf")
        with socket.create_connection((conductor.host, conductor.port), timeout=5) as raw:
            raw.sendall(f"GET /api/workflow/{workflow_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = b""
            try:
                while chunk := raw.recv(65536):
                    received += chunk
            except ConnectionResetError:
                pass  # a reset after the partial answer is also a torn answer
        head, _, body = received.partition(b"\r\n\r\n")
        declared = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < declared
        api.close()
