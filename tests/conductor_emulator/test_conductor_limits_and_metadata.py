"""Spec conductor-api.md §12 items 22–25: concurrency limits and definitions; §2.11–§2.14."""

from __future__ import annotations

from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ConductorEmulator, ManualClock


def test_concurrent_exec_limit_holds_back_second_task(api: Api, clock: ManualClock) -> None:  # §12.22
    api.register_taskdefs(fast_taskdef("a", concurrentExecLimit=1))
    api.chain("wf", "a")
    api.start("wf")
    api.start("wf")
    first = api.batch_poll("a", count=2).json()
    assert len(first) == 1
    assert api.batch_poll("a", count=2).json() == []
    assert api.queue_size("a") == 1  # postponed, still queued
    api.update(first[0], "COMPLETED")  # 3.30+: a freed slot releases the postponed task at once
    second = api.batch_poll("a", count=2).json()
    assert len(second) == 1 and second[0]["taskId"] != first[0]["taskId"]


def test_concurrent_exec_limit_before_3_30_waits_out_the_postponement(clock: ManualClock) -> None:  # §5.5
    with ConductorEmulator(clock=clock, server_version="3.21.20") as conductor:
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a", concurrentExecLimit=1))
        api.chain("wf", "a")
        api.start("wf")
        api.start("wf")
        first = api.batch_poll("a", count=2).json()
        api.update(first[0], "COMPLETED")
        assert api.batch_poll("a", count=2).json() == []
        clock.advance(60)
        assert len(api.batch_poll("a", count=2).json()) == 1
        api.close()


def test_unknown_taskdef_is_404_with_error_body(api: Api) -> None:  # §12.23
    answer = api.client.get("/metadata/taskdefs/ghost")
    assert answer.status_code == 404
    body = answer.json()
    assert body["status"] == 404
    assert body["message"] == "No such taskType found by name: ghost"
    assert body["retryable"] is False
    assert isinstance(body["instance"], str)
    assert set(body) == {"status", "message", "instance", "retryable"}


def test_taskdefs_upsert_and_put_unknown(api: Api) -> None:  # §12.24
    assert api.register_taskdefs({"name": "a", "retryCount": 1}).status_code == 200
    assert api.register_taskdefs({"name": "a", "retryCount": 2}).status_code == 200
    stored = api.client.get("/metadata/taskdefs/a").json()
    assert stored["retryCount"] == 2
    assert stored["responseTimeoutSeconds"] == 3600 and stored["timeoutPolicy"] == "TIME_OUT_WF"
    assert stored["rateLimitPerFrequency"] == 0 and stored["rateLimitFrequencyInSeconds"] == 1
    assert "pollTimeoutSeconds" not in stored and "description" not in stored  # nulls are omitted
    unknown = api.client.put("/metadata/taskdefs", json={"name": "ghost"})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "No such task by name ghost"
    assert api.client.put("/metadata/taskdefs", json={"name": "a", "retryCount": 4}).status_code == 200
    assert api.client.get("/metadata/taskdefs/a").json()["retryCount"] == 4
    assert [taskdef["name"] for taskdef in api.client.get("/metadata/taskdefs").json()] == ["a"]


def test_taskdef_validation(api: Api) -> None:  # §2.9
    empty = api.client.post("/metadata/taskdefs", json=[])
    assert empty.status_code == 400
    short = api.register_taskdefs({"name": "a", "timeoutSeconds": 100})  # default responseTimeout 3600 > 100
    assert short.status_code == 400
    assert (
        short.json()["validationErrors"][0]["message"]
        == "TaskDef: a responseTimeoutSeconds: 3600 must be less than timeoutSeconds: 100"
    )
    negative = api.register_taskdefs({"name": "a", "retryCount": -1})
    assert negative.status_code == 400


def test_workflow_def_create_twice_is_409(api: Api) -> None:  # §12.25
    assert api.chain("wf", "a").status_code == 200
    again = api.chain("wf", "a")
    assert again.status_code == 409
    assert again.json()["message"] == "Workflow with wf.1 already exists!"
    assert (
        api.client.post(
            "/metadata/workflow",
            params={"overwrite": "true"},
            json={"name": "wf", "tasks": [{"name": "b", "taskReferenceName": "x"}]},
        ).status_code
        == 200
    )
    assert api.client.get("/metadata/workflow/wf").json()["tasks"][0]["name"] == "b"
    unknown = api.client.get("/metadata/workflow/ghost", params={"version": 3})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "No such workflow found by name: ghost, version: 3"


def test_workflow_def_bulk_put_and_validation(api: Api) -> None:  # §2.10
    answer = api.client.put(
        "/metadata/workflow",
        json=[{"name": "ok", "tasks": [{"name": "a", "taskReferenceName": "r"}]}, {"name": "bad", "tasks": []}],
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["bulkSuccessfulResults"] == ["ok"]
    assert set(body["bulkErrorResults"]) == {"bad"}
    duplicate_refs = api.register_workflow(
        "dup", [{"name": "a", "taskReferenceName": "r"}, {"name": "b", "taskReferenceName": "r"}]
    )
    assert duplicate_refs.status_code == 400
    assert "should be unique" in duplicate_refs.json()["validationErrors"][0]["message"]


def test_start_workflow_forms_and_errors(api: Api) -> None:  # §2.11
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    by_name = api.client.post("/workflow/wf", json={"k": 1}, params={"correlationId": "c-1", "priority": 7})
    assert by_name.status_code == 200
    workflow = api.workflow(by_name.text)
    assert workflow["input"] == {"k": 1} and workflow["correlationId"] == "c-1" and workflow["priority"] == 7
    assert workflow["workflowName"] == "wf" and workflow["workflowVersion"] == 1 and workflow["status"] == "RUNNING"
    assert api.client.post("/workflow/ghost", json={}).json()["message"] == "No such workflow found by name: ghost, version: null"
    assert api.client.post("/workflow/wf", content=b"").status_code == 500
    assert api.client.post("/workflow/wf", json={}, params={"priority": 100}).status_code == 400
    request = api.client.post("/workflow", json={"name": "wf", "version": 1, "input": {"z": 2}})
    assert request.status_code == 200 and api.workflow(request.text)["input"] == {"z": 2}
    unknown = api.client.post("/workflow", json={"name": "ghost", "version": 2})
    assert unknown.status_code == 404 and unknown.json()["message"] == "No such workflow defined. name=ghost, version=2"
    assert api.client.post("/workflow", json={"version": 2}).status_code == 400
    null_input = api.client.post("/workflow", json={"name": "wf", "input": None})
    assert null_input.status_code == 400 and null_input.json()["message"] == "NULL input passed when starting workflow"
    inline = api.client.post(
        "/workflow", json={"name": "adhoc", "workflowDef": {"name": "adhoc", "tasks": [{"name": "a", "taskReferenceName": "r"}]}}
    )
    assert inline.status_code == 200
    assert api.poll_one("a")["workflowInstanceId"] in {by_name.text, request.text, inline.text}


def test_get_workflow_without_tasks_and_unknown(api: Api) -> None:  # §2.12
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    assert api.client.get(f"/workflow/{workflow_id}", params={"includeTasks": "false"}).json()["tasks"] == []
    missing = api.client.get("/workflow/nope")
    assert missing.status_code == 404 and missing.json()["message"] == "No such workflow found by id: nope"


def test_terminate_and_workflow_controls(api: Api) -> None:  # §2.13
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    assert api.client.delete(f"/workflow/{workflow_id}", params={"reason": "stop it"}).status_code == 200
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "TERMINATED" and workflow["reasonForIncompletion"] == "stop it"
    assert workflow["tasks"][0]["status"] == "CANCELED"
    assert api.client.delete(f"/workflow/{workflow_id}").status_code == 200  # already terminated: no-op
    assert api.update(task, "COMPLETED").status_code == 200  # stale
    assert api.task(task["taskId"])["status"] == "CANCELED"
    assert api.client.post(f"/workflow/{workflow_id}/retry").status_code == 204
    retried = api.workflow(workflow_id)
    assert retried["status"] == "RUNNING" and retried["tasks"][1]["retriedTaskId"] == task["taskId"]
    api.update(api.poll_one("a"), "COMPLETED")
    assert api.workflow(workflow_id)["status"] == "COMPLETED"
    completed = api.client.delete(f"/workflow/{workflow_id}")
    assert completed.status_code == 409 and completed.json()["message"] == "Cannot terminate a COMPLETED workflow."
    assert api.client.post(f"/workflow/{workflow_id}/restart").status_code == 204
    restarted = api.workflow(workflow_id)
    assert restarted["status"] == "RUNNING" and len(restarted["tasks"]) == 1
    running_retry = api.client.post(f"/workflow/{workflow_id}/retry")
    assert running_retry.status_code == 404 and running_retry.json()["message"] == "Workflow is still running.  status=RUNNING"
    assert api.client.put(f"/workflow/{workflow_id}/pause").status_code == 200
    api.update(api.poll_one("a"), "COMPLETED")  # queued tasks still run while paused
    assert api.workflow(workflow_id)["status"] == "PAUSED"
    assert api.client.put(f"/workflow/{workflow_id}/resume").status_code == 200
    assert api.workflow(workflow_id)["status"] == "COMPLETED"


def test_remove_workflow_deletes_it_and_its_tasks(api: Api) -> None:  # DELETE /api/workflow/{id}/remove
    api.register_taskdefs(fast_taskdef("a", concurrentExecLimit=1))
    api.chain("wf", "a")
    removed_id = api.start("wf")
    task = api.poll_one("a")
    assert api.client.delete(f"/workflow/{removed_id}/remove").status_code == 200
    assert api.client.get(f"/workflow/{removed_id}").status_code == 404
    assert api.client.get(f"/tasks/{task['taskId']}").status_code == 404
    api.start("wf")
    assert len(api.batch_poll("a", count=1).json()) == 1  # the removed task no longer holds the only slot
    assert api.client.delete("/workflow/nope/remove").status_code == 404


def test_health(api: Api, conductor: ConductorEmulator) -> None:  # §2.14
    root = conductor.url.removesuffix("/api")
    import httpx

    for path in ("/health", "/api/health"):
        answer = httpx.get(root + path)
        assert answer.status_code == 200
        assert answer.json() == {"healthResults": [], "suppressedHealthResults": [], "healthy": True}


def test_younger_task_cannot_overtake_a_postponed_older_one(clock: ManualClock) -> None:  # §5.5 "L oldest"
    with ConductorEmulator(clock=clock, server_version="3.21.20") as conductor:  # no early release before 3.30
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a", concurrentExecLimit=1))
        api.chain("wf", "a")
        api.start("wf")
        older = api.start("wf")
        first = api.batch_poll("a", count=2).json()  # the older second task is postponed for 60 s
        api.update(first[0], "COMPLETED")
        api.start("wf")  # a younger task is visible right away...
        assert api.batch_poll("a", count=1).json() == []  # ...but may not overtake the postponed older one
        clock.advance(60)
        released = api.batch_poll("a", count=2).json()
        assert [task["workflowInstanceId"] for task in released] == [older]
        api.close()
