"""Spec conductor-api.md §12 items 1–6: polling and queues."""

from __future__ import annotations

import time

from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ManualClock


def test_empty_single_poll_is_204_and_empty_batch_poll_is_empty_list(api: Api) -> None:  # §12.1
    single = api.client.get("/tasks/poll/nothing_here")
    assert single.status_code == 204
    assert single.content == b""
    assert "content-type" not in single.headers
    batch = api.batch_poll("nothing_here", count=5, timeout=0)
    assert batch.status_code == 200
    assert batch.json() == []


def test_long_poll_timeout_above_five_seconds_is_400(api: Api) -> None:  # §12.2
    refused = api.batch_poll("t", count=1, timeout=5001)
    assert refused.status_code == 400
    body = refused.json()
    assert body["message"] == "Long Poll Timeout value cannot be more than 5 seconds"
    assert body["status"] == 400 and body["retryable"] is False and "instance" in body
    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    api.start("wf")
    accepted = api.batch_poll("t", count=1, timeout=5000)
    assert accepted.status_code == 200
    assert len(accepted.json()) == 1


def test_batch_long_poll_waits_for_count_or_deadline(api: Api) -> None:  # §12.3
    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    started = time.monotonic()
    empty = api.batch_poll("t", count=3, timeout=300)
    assert empty.json() == []
    assert time.monotonic() - started >= 0.29  # waited out the long poll
    api.start("wf")
    started = time.monotonic()
    one = api.batch_poll("t", count=3, timeout=300)
    assert len(one.json()) == 1  # fewer than count: answered at the deadline with what it had
    assert time.monotonic() - started >= 0.29
    for _ in range(3):
        api.start("wf")
    three = api.batch_poll("t", count=3, timeout=4000)
    assert len(three.json()) == 3  # count reached: answered without waiting out 4 s


def test_long_poll_returns_a_task_started_while_it_waits(api: Api, conductor) -> None:  # §12.3 (wake-up)
    import threading

    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    other = Api(conductor.url)
    starter = threading.Timer(0.2, lambda: other.start("wf"))
    starter.start()
    answer = api.batch_poll("t", count=1, timeout=3000)
    starter.join()
    other.close()
    assert len(answer.json()) == 1


def test_polled_task_fields_and_queue_accounting(api: Api) -> None:  # §12.4
    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    workflow_id = api.start("wf")
    assert api.queue_size("t") == 1
    task = api.poll_one("t", workerid="worker-7")
    assert task["status"] == "IN_PROGRESS"
    assert task["pollCount"] == 1
    assert task["startTime"] > 0
    assert task["workerId"] == "worker-7"
    assert task["callbackAfterSeconds"] == 0
    assert task["workflowInstanceId"] == workflow_id
    assert task["taskDefName"] == "t" and task["taskType"] == "t" and task["referenceTaskName"] == "step0"
    assert task["workflowTask"]["taskReferenceName"] == "step0"
    assert task["taskDefinition"]["name"] == "t"
    assert api.batch_poll("t", count=1).json() == []
    assert api.queue_size("t") == 0
    assert api.client.get("/tasks/poll/t").status_code == 204
    single = api.client.get("/tasks/poll/t")
    assert single.status_code == 204


def test_single_poll_returns_one_task_object(api: Api) -> None:  # §2.1
    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    api.start("wf")
    answer = api.client.get("/tasks/poll/t", params={"workerid": "w"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "IN_PROGRESS"


def test_domains_are_separate_queues(api: Api) -> None:  # §12.5
    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    default_id = api.start("wf")
    api.batch_poll("t", count=1, domain="blue")  # a blue poller is active, so the next start routes there
    answer = api.client.post("/workflow", json={"name": "wf", "input": {}, "taskToDomain": {"t": "blue"}})
    blue_id = answer.text
    assert api.queue_size("t") == 1
    assert api.queue_size("t", "blue") == 1
    blue_task = api.poll_one("t", domain="blue")
    assert blue_task["workflowInstanceId"] == blue_id
    assert blue_task["domain"] == "blue"
    assert api.batch_poll("t", count=5, domain="blue").json() == []
    default_task = api.poll_one("t")
    assert default_task["workflowInstanceId"] == default_id
    assert "domain" not in default_task
    queues = api.client.get("/tasks/queue/all").json()
    assert queues == {"blue:t": 0, "t": 0}


def test_domain_falls_back_to_last_listed_when_no_poller_is_active(api: Api, clock: ManualClock) -> None:  # §5.4
    api.register_taskdefs(fast_taskdef("t"))
    api.chain("wf", "t")
    api.batch_poll("t", count=1, domain="green")
    clock.advance(11)  # the green poller is no longer active (10 s window)
    answer = api.client.post("/workflow", json={"name": "wf", "taskToDomain": {"*": "green,NO_DOMAIN"}})
    assert answer.status_code == 200
    assert api.queue_size("t") == 1
    assert api.queue_size("t", "green") == 0


def test_start_delay_hides_task_but_counts_it(api: Api, clock: ManualClock) -> None:  # §12.6
    api.register_taskdefs(fast_taskdef("t"))
    api.register_workflow("wf", [{"name": "t", "taskReferenceName": "late", "startDelay": 5}])
    api.start("wf")
    assert api.queue_size("t") == 1
    assert api.batch_poll("t", count=1).json() == []
    clock.advance(4.9)
    assert api.batch_poll("t", count=1).json() == []
    clock.advance(0.1)
    task = api.poll_one("t")
    assert task["startDelayInSeconds"] == 5
    assert api.queue_size("t") == 0


def test_queue_sizes_and_poll_data(api: Api) -> None:  # §2.8
    api.register_taskdefs(fast_taskdef("a"), fast_taskdef("b"))
    api.chain("wfa", "a")
    api.start("wfa")
    api.start("wfa")
    sizes = api.client.get("/tasks/queue/sizes", params=[("taskType", "a"), ("taskType", "b")])
    assert sizes.json() == {"a": 2, "b": 0}
    assert api.client.get("/tasks/queue/sizes").status_code == 500
    api.batch_poll("a", count=1, workerid="w1")
    poll_data = api.client.get("/tasks/queue/polldata", params={"taskType": "a"}).json()
    assert len(poll_data) == 1
    assert poll_data[0]["queueName"] == "a" and poll_data[0]["workerId"] == "w1" and poll_data[0]["lastPollTime"] > 0
    assert "domain" not in poll_data[0]


def test_queue_endpoints_without_task_type_are_500(api: Api) -> None:  # §1.1: unmapped Spring exceptions
    for path in ("/tasks/queue/size", "/tasks/queue/polldata", "/tasks/queue/sizes"):
        answer = api.client.get(path)
        assert answer.status_code == 500
        assert answer.json()["status"] == 500


def test_idle_long_polls_leave_no_waiters_behind(api: Api, conductor) -> None:
    for _ in range(3):
        assert api.batch_poll("idle", count=1, timeout=120).json() == []
    assert all(not waiting for waiting in conductor._app._waiters.values())
