"""Spec conductor-api.md §12 items 26–30: `POST /api/tasks/update-v2` across server versions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ConductorEmulator, ManualClock


def _seed(api: Api, workflows: int) -> None:
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    for _ in range(workflows):
        api.start("wf")


def test_v2_completed_returns_next_task(api: Api) -> None:  # §12.26
    _seed(api, 2)
    task = api.poll_one("a")
    answer = api.update_v2(task, "COMPLETED", workerId="w9")
    assert answer.status_code == 200
    following = answer.json()
    assert following["taskId"] != task["taskId"]
    assert following["status"] == "IN_PROGRESS" and following["pollCount"] == 1 and following["workerId"] == "w9"
    assert api.task(task["taskId"])["status"] == "COMPLETED"


def test_v2_with_nothing_queued_or_lease_is_204(api: Api) -> None:  # §12.27
    _seed(api, 1)
    task = api.poll_one("a")
    lease = api.update_v2(task, "IN_PROGRESS", extendLease=True)
    assert lease.status_code == 204 and lease.content == b""
    done = api.update_v2(task, "COMPLETED")
    assert done.status_code == 204
    assert api.task(task["taskId"])["status"] == "COMPLETED"


def test_v2_in_progress_is_204_on_3_32(api: Api) -> None:  # §12.28 (3.32 profile)
    _seed(api, 1)
    task = api.poll_one("a")
    answer = api.update_v2(task, "IN_PROGRESS")
    assert answer.status_code == 204
    assert api.task(task["taskId"])["status"] == "SCHEDULED"


@pytest.fixture
def api_331(clock: ManualClock) -> Iterator[Api]:
    with ConductorEmulator(clock=clock, server_version="3.31.0") as conductor:
        client = Api(conductor.url)
        yield client
        client.close()


def test_v2_in_progress_returns_same_task_on_3_31(api_331: Api) -> None:  # §12.28 (3.21.12–3.31 profile)
    _seed(api_331, 1)
    task = api_331.poll_one("a")
    answer = api_331.update_v2(task, "IN_PROGRESS")
    assert answer.status_code == 200
    again = answer.json()
    assert again["taskId"] == task["taskId"] and again["pollCount"] == 2


def test_v2_stale_update_still_returns_next_task(api: Api) -> None:  # §12.29
    _seed(api, 2)
    task = api.poll_one("a")
    api.update(task, "COMPLETED")
    answer = api.update_v2(task, "COMPLETED")
    assert answer.status_code == 200
    assert answer.json()["taskId"] != task["taskId"]


def test_v2_errors(api: Api) -> None:  # §2.4
    _seed(api, 1)
    missing_ids = api.client.post("/tasks/update-v2", json={"status": "COMPLETED"})
    assert missing_ids.status_code == 500  # the controller's @Valid fires first
    unknown = api.client.post("/tasks/update-v2", json={"workflowInstanceId": "w", "taskId": "t", "status": "COMPLETED"})
    assert unknown.status_code == 404 and unknown.json()["message"] == "No such workflow found by id: w"


def test_legacy_server_has_no_v2_and_answers_500(clock: ManualClock) -> None:  # §12.30
    with ConductorEmulator(clock=clock, server_version="3.21.11") as conductor:
        api = Api(conductor.url)
        _seed(api, 1)
        task = api.poll_one("a")
        answer = api.update_v2(task, "COMPLETED")
        assert answer.status_code == 500
        assert "Request method 'POST' is not supported" in answer.json()["message"]
        assert api.task(task["taskId"])["status"] == "IN_PROGRESS"  # never reached the update logic
        assert api.update(task, "COMPLETED").status_code == 200  # the fallback a client must take
        unknown = api.client.get("/tasks/ghost")
        assert unknown.status_code == 204  # before 3.21.20
        api.close()


def test_gateway_without_v2_route_answers_404(clock: ManualClock) -> None:  # §7.4 fallback trigger
    with ConductorEmulator(clock=clock, update_v2_status=404) as conductor:
        api = Api(conductor.url)
        _seed(api, 1)
        task = api.poll_one("a")
        answer = api.update_v2(task, "COMPLETED")
        assert answer.status_code == 404
        assert answer.json()["message"] == "No static resource api/tasks/update-v2."
        api.close()


def test_wrong_method_is_405_on_3_32_and_500_before(api: Api, api_331: Api) -> None:  # §0.3
    assert api.client.delete("/tasks/poll/batch/a").status_code == 405
    assert api_331.client.delete("/tasks/poll/batch/a").status_code == 500


def test_options_probe_lists_post_only_where_update_v2_exists(api: Api, clock: ManualClock) -> None:  # §10 item 4
    modern = api.client.options("/tasks/update-v2")
    assert modern.status_code == 200 and "POST" in modern.headers["allow"].split(",")
    with ConductorEmulator(clock=clock, server_version="3.21.11") as legacy:
        legacy_api = Api(legacy.url)
        answer = legacy_api.client.options("/tasks/update-v2")
        legacy_api.close()
        assert answer.status_code == 200 and "POST" not in answer.headers["allow"].split(",")  # only GET /tasks/{taskId}
