"""Spec conductor-api.md §12 items 15–21: timeouts and retries, on a manual clock."""

from __future__ import annotations

import pytest
from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ManualClock


def test_response_timeout_retries_under_new_id_and_ignores_late_result(api: Api, clock: ManualClock) -> None:  # §12.15
    api.register_taskdefs(fast_taskdef("a", responseTimeoutSeconds=2, retryCount=1, retryDelaySeconds=3))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    first = api.poll_one("a")
    clock.advance(1.9)
    assert api.task(first["taskId"])["status"] == "IN_PROGRESS"
    clock.advance(0.1)
    timed_out = api.task(first["taskId"])
    assert timed_out["status"] == "TIMED_OUT"
    assert timed_out["retried"] is True
    assert (
        timed_out["reasonForIncompletion"]
        == f"responseTimeout: 2 exceeded for the taskId: {first['taskId']} with Task Definition: a"
    )
    tasks = api.workflow(workflow_id)["tasks"]
    assert len(tasks) == 2
    retry = tasks[1]
    assert retry["taskId"] != first["taskId"]
    assert retry["retriedTaskId"] == first["taskId"]
    assert retry["retryCount"] == 1
    assert retry["status"] == "SCHEDULED"
    assert retry["callbackAfterSeconds"] == 3 and retry["startDelayInSeconds"] == 3
    assert retry["reasonForIncompletion"] == timed_out["reasonForIncompletion"]
    assert api.queue_size("a") == 1
    assert api.batch_poll("a").json() == []  # retry delay not over
    late = api.update(first, "COMPLETED", outputData={"late": True})
    assert late.status_code == 200 and late.text == first["taskId"]
    assert api.task(first["taskId"])["status"] == "TIMED_OUT"
    clock.advance(3)
    second = api.poll_one("a")
    assert second["taskId"] == retry["taskId"]
    clock.advance(2)  # the retry times out too: retries exhausted
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "TIMED_OUT"
    assert workflow["reasonForIncompletion"].startswith(
        f"Task {retry['taskId']} failed with status: TIMED_OUT and reason: 'responseTimeout"
    )


def test_lease_extension_keeps_task_alive(api: Api, clock: ManualClock) -> None:  # §12.16
    api.register_taskdefs(fast_taskdef("a", responseTimeoutSeconds=2))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    for _ in range(5):
        clock.advance(1)
        assert api.update(task, "IN_PROGRESS", extendLease=True).status_code == 200
    assert api.task(task["taskId"])["status"] == "IN_PROGRESS"
    api.update(task, "COMPLETED")
    assert api.workflow(workflow_id)["status"] == "COMPLETED"


@pytest.mark.parametrize("policy", ["RETRY", "TIME_OUT_WF", "ALERT_ONLY"])
def test_task_timeout_policies(api: Api, clock: ManualClock, policy: str) -> None:  # §12.17
    api.register_taskdefs(fast_taskdef("a", timeoutSeconds=5, responseTimeoutSeconds=5, timeoutPolicy=policy, retryCount=1))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    clock.advance(3)
    api.update(task, "IN_PROGRESS", extendLease=True)
    clock.advance(2)  # 5 s after the first poll; response deadline is 8 s
    stored = api.task(task["taskId"])
    workflow = api.workflow(workflow_id)
    if policy == "ALERT_ONLY":
        assert stored["status"] == "IN_PROGRESS"
        assert workflow["status"] == "RUNNING"
        return
    assert stored["status"] == "TIMED_OUT"
    assert stored["reasonForIncompletion"] == (
        f"Task timed out after 5 seconds. Timeout configured as 5 seconds. Timeout policy configured to {policy}"
    )
    if policy == "TIME_OUT_WF":
        assert workflow["status"] == "TIMED_OUT"
        assert len(workflow["tasks"]) == 1
    else:
        assert workflow["status"] == "RUNNING"
        assert workflow["tasks"][1]["retriedTaskId"] == task["taskId"]


def test_poll_timeout_with_no_poller_times_out_workflow(api: Api, clock: ManualClock) -> None:  # §12.18
    api.register_taskdefs(fast_taskdef("a", pollTimeoutSeconds=4))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    clock.advance(3.9)
    assert api.workflow(workflow_id)["status"] == "RUNNING"
    clock.advance(0.1)
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "TIMED_OUT"
    assert workflow["tasks"][0]["status"] == "TIMED_OUT"
    assert workflow["tasks"][0]["reasonForIncompletion"].startswith("Task poll timed out after 4 seconds.")
    assert api.queue_size("a") == 0


def test_workflow_timeout(api: Api, clock: ManualClock) -> None:  # §4.6
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a", timeoutSeconds=10, timeoutPolicy="TIME_OUT_WF")
    workflow_id = api.start("wf")
    clock.advance(10)
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "TIMED_OUT"
    assert workflow["reasonForIncompletion"].startswith("Workflow timed out after 10 seconds.")
    assert workflow["tasks"][0]["status"] == "CANCELED"


def test_failed_retries_then_fails_workflow(api: Api, clock: ManualClock) -> None:  # §12.19
    api.register_taskdefs(fast_taskdef("a", retryCount=2, retryDelaySeconds=0))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    ids = []
    for attempt in range(3):
        task = api.poll_one("a")
        assert task["retryCount"] == attempt
        ids.append(task["taskId"])
        api.update(task, "FAILED", reasonForIncompletion=f"boom {attempt}")
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "FAILED"
    assert workflow["reasonForIncompletion"] == f"Task {ids[2]} failed with status: FAILED and reason: 'boom 2'"
    assert workflow["failedTaskId"] == ids[2]
    assert workflow["failedReferenceTaskNames"] == ["step0"]
    assert workflow["failedTaskNames"] == ["a"]
    assert len(set(ids)) == 3
    assert api.batch_poll("a").json() == []


@pytest.mark.parametrize(
    ("logic", "extra", "expected"),
    [
        ("FIXED", {}, [4, 4, 4]),
        ("LINEAR_BACKOFF", {"backoffScaleFactor": 2}, [8, 16, 24]),
        ("EXPONENTIAL_BACKOFF", {}, [4, 8, 16]),
        ("EXPONENTIAL_BACKOFF", {"maxRetryDelaySeconds": 10}, [4, 8, 10]),
    ],
)
def test_retry_delays(api: Api, clock: ManualClock, logic: str, extra: dict, expected: list[int]) -> None:  # §12.19
    api.register_taskdefs(fast_taskdef("a", retryCount=3, retryDelaySeconds=4, retryLogic=logic, **extra))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    for delay in expected:
        task = api.poll_one("a")
        api.update(task, "FAILED")
        retry = api.workflow(workflow_id)["tasks"][-1]
        assert retry["callbackAfterSeconds"] == delay
        clock.advance(delay - 1)
        assert api.batch_poll("a").json() == []
        clock.advance(1)


def test_terminal_error_is_never_retried(api: Api) -> None:  # §12.20
    api.register_taskdefs(fast_taskdef("a", retryCount=5))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    api.update(task, "FAILED_WITH_TERMINAL_ERROR", reasonForIncompletion="bad input")
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "FAILED"
    assert len(workflow["tasks"]) == 1
    assert workflow["reasonForIncompletion"] == f"Task {task['taskId']} failed with status: FAILED and reason: 'bad input'"


def test_workflow_task_retry_count_overrides_taskdef(api: Api) -> None:  # §12.21
    api.register_taskdefs(fast_taskdef("a", retryCount=5))
    api.register_workflow("wf", [{"name": "a", "taskReferenceName": "only", "retryCount": 1}])
    workflow_id = api.start("wf")
    api.update(api.poll_one("a"), "FAILED")
    api.update(api.poll_one("a"), "FAILED")
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "FAILED"
    assert len(workflow["tasks"]) == 2


def test_unregistered_task_type_runs_with_default_taskdef(api: Api, clock: ManualClock) -> None:  # §2.10
    api.chain("wf", "never_registered")
    workflow_id = api.start("wf")
    task = api.poll_one("never_registered")
    assert task["responseTimeoutSeconds"] == 3600
    assert task["taskDefinition"]["retryCount"] == 3
    api.update(task, "FAILED")
    retry = api.workflow(workflow_id)["tasks"][1]
    assert retry["callbackAfterSeconds"] == 60  # the default retryDelaySeconds


def test_optional_task_failure_continues_workflow(api: Api) -> None:  # §4.7
    api.register_taskdefs(fast_taskdef("a"), fast_taskdef("b"))
    api.register_workflow(
        "wf", [{"name": "a", "taskReferenceName": "maybe", "optional": True}, {"name": "b", "taskReferenceName": "then"}]
    )
    workflow_id = api.start("wf")
    api.update(api.poll_one("a"), "FAILED")
    assert api.workflow(workflow_id)["tasks"][0]["status"] == "COMPLETED_WITH_ERRORS"
    api.update(api.poll_one("b"), "COMPLETED")
    assert api.workflow(workflow_id)["status"] == "COMPLETED"


@pytest.mark.parametrize(("policy", "expected"), [("RETRY", "TIMED_OUT"), ("ALERT_ONLY", "FAILED")])
def test_total_timeout_budget(api: Api, clock: ManualClock, policy: str, expected: str) -> None:  # §4.6 total timeout (3.30+)
    api.register_taskdefs(fast_taskdef("a", retryCount=5, retryDelaySeconds=1, totalTimeoutSeconds=10, timeoutPolicy=policy))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    api.update(api.poll_one("a"), "FAILED")
    clock.advance(9)
    second = api.poll_one("a")
    clock.advance(1)  # the budget is spent: RETRY times the attempt out at once, ALERT_ONLY lets it run on
    api.update(second, "FAILED")  # ...and no retry follows its failure
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == expected
    assert len(workflow["tasks"]) == 2
    if policy == "RETRY":
        assert workflow["tasks"][1]["reasonForIncompletion"].startswith(f"Task a/{second['taskId']} exceeded total timeout of 10")


def test_retry_delay_cap_is_ignored_before_3_30(clock: ManualClock) -> None:  # §0.3
    from perago.testing.conductor import ConductorEmulator

    with ConductorEmulator(clock=clock, server_version="3.21.20") as conductor:
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a", retryCount=1, retryDelaySeconds=30, maxRetryDelaySeconds=5))
        api.chain("wf", "a")
        workflow_id = api.start("wf")
        api.update(api.poll_one("a"), "FAILED")
        assert api.workflow(workflow_id)["tasks"][1]["callbackAfterSeconds"] == 30
        api.close()


def test_rate_limit_only_when_enabled(clock: ManualClock) -> None:  # §5.5
    from perago.testing.conductor import ConductorEmulator

    for enforce, expected in ((False, 3), (True, 2)):
        with ConductorEmulator(clock=clock, rate_limits=enforce) as conductor:
            api = Api(conductor.url)
            api.register_taskdefs(fast_taskdef("a", rateLimitPerFrequency=2, rateLimitFrequencyInSeconds=10))
            api.chain("wf", "a")
            for _ in range(3):
                api.start("wf")
            assert len(api.batch_poll("a", count=3).json()) == expected
            api.close()
