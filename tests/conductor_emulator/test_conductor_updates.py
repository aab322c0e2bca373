"""Spec conductor-api.md §12 items 7–14: task updates, and the workflow they drive."""

from __future__ import annotations

from conductor_rest import Api, fast_taskdef

from perago.testing.conductor import ManualClock


def test_completed_update_answers_task_id_and_schedules_next(api: Api) -> None:  # §12.7
    api.register_taskdefs(fast_taskdef("a"), fast_taskdef("b"))
    api.register_workflow(
        "wf",
        [
            {"name": "a", "taskReferenceName": "first", "inputParameters": {"x": "${workflow.input.x}"}},
            {
                "name": "b",
                "taskReferenceName": "second",
                "inputParameters": {"y": "${first.output.y}", "label": "y=${first.output.y}", "gone": "${first.output.nope}"},
            },
        ],
        outputParameters={"final": "${second.output.z}", "x": "${workflow.input.x}"},
    )
    workflow_id = api.start("wf", {"x": {"deep": [1, 2]}})
    first = api.poll_one("a")
    assert first["inputData"] == {"x": {"deep": [1, 2]}}
    answer = api.update(first, "COMPLETED", outputData={"y": 5})
    assert answer.status_code == 200
    assert answer.text == first["taskId"]
    assert answer.headers["content-type"].startswith("text/plain")
    second_queued = api.workflow(workflow_id)["tasks"][1]
    assert second_queued["status"] == "SCHEDULED"
    assert second_queued["inputData"] == {"y": 5, "label": "y=5", "gone": None}
    second = api.poll_one("b")
    api.update(second, "COMPLETED", outputData={"z": "done"})
    workflow = api.workflow(workflow_id)
    assert workflow["status"] == "COMPLETED"
    assert workflow["output"] == {"final": "done", "x": {"deep": [1, 2]}}
    assert workflow["endTime"] >= workflow["createTime"] > 0
    assert [task["status"] for task in workflow["tasks"]] == ["COMPLETED", "COMPLETED"]
    assert [task["seq"] for task in workflow["tasks"]] == [1, 2]


def test_workflow_output_defaults_to_last_task_output(api: Api) -> None:  # §6.3
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    api.update(api.poll_one("a"), "COMPLETED", outputData={"r": 1})
    assert api.workflow(workflow_id)["output"] == {"r": 1}


def test_second_completed_is_accepted_and_ignored(api: Api) -> None:  # §12.8
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    api.update(task, "COMPLETED", outputData={"v": 1})
    again = api.update(task, "FAILED", outputData={"v": 2}, logs=[{"log": "late", "createdTime": 1}])
    assert again.status_code == 200 and again.text == task["taskId"]
    stored = api.task(task["taskId"])
    assert stored["status"] == "COMPLETED" and stored["outputData"] == {"v": 1}
    assert api.workflow(workflow_id)["status"] == "COMPLETED"
    assert api.client.get(f"/tasks/{task['taskId']}/log").status_code == 204  # logs of a stale update are dropped


def test_unknown_ids_and_missing_ids(api: Api) -> None:  # §12.9
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    unknown_task = api.client.post("/tasks", json={"workflowInstanceId": workflow_id, "taskId": "nope", "status": "COMPLETED"})
    assert unknown_task.status_code == 404
    assert unknown_task.json()["message"] == "No such task found by id: nope"
    unknown_workflow = api.client.post("/tasks", json={"workflowInstanceId": "wf-x", "taskId": "nope", "status": "COMPLETED"})
    assert unknown_workflow.status_code == 404
    assert unknown_workflow.json()["message"] == "No such workflow found by id: wf-x"
    missing = api.client.post("/tasks", json={"workflowInstanceId": workflow_id, "status": "COMPLETED"})
    assert missing.status_code == 400
    body = missing.json()
    assert body["message"] == "Validation failed, check below errors for detail."
    assert body["validationErrors"] == [{"path": "updateTask.taskResult.taskId", "message": "Task ID cannot be null or empty"}]
    assert "instance" not in body


def test_invalid_status_string_is_500(api: Api) -> None:  # §12.10
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    api.start("wf")
    task = api.poll_one("a")
    answer = api.update(task, "TIMED_OUT")
    assert answer.status_code == 500
    assert answer.json()["message"].startswith("JSON parse error")
    assert api.task(task["taskId"])["status"] == "IN_PROGRESS"


def test_in_progress_with_callback_requeues_same_task(api: Api, clock: ManualClock) -> None:  # §12.11
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    api.start("wf")
    task = api.poll_one("a", workerid="w1")
    answer = api.update(task, "IN_PROGRESS", callbackAfterSeconds=2, outputData={"progress": 50})
    assert answer.status_code == 200
    stored = api.task(task["taskId"])
    assert stored["status"] == "SCHEDULED"
    assert stored["callbackAfterSeconds"] == 2
    assert api.queue_size("a") == 1
    clock.advance(1.9)
    assert api.batch_poll("a").json() == []
    clock.advance(0.1)
    again = api.poll_one("a", workerid="w2")
    assert again["taskId"] == task["taskId"]
    assert again["pollCount"] == 2
    assert again["outputData"] == {"progress": 50}
    assert again["startTime"] == task["startTime"]
    assert again["callbackAfterSeconds"] == 0
    assert again["workerId"] == "w2"


def test_in_progress_without_callback_is_immediately_repollable(api: Api) -> None:  # §12.12
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    api.start("wf")
    task = api.poll_one("a")
    api.update(task, "IN_PROGRESS")
    assert api.poll_one("a")["taskId"] == task["taskId"]


def test_extend_lease_changes_only_update_time(api: Api, clock: ManualClock) -> None:  # §12.13
    api.register_taskdefs(fast_taskdef("a", responseTimeoutSeconds=10))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    clock.advance(8)
    answer = api.update(task, "COMPLETED", extendLease=True, outputData={"ignored": True}, callbackAfterSeconds=30)
    assert answer.status_code == 200 and answer.text == task["taskId"]
    stored = api.task(task["taskId"])
    assert stored["status"] == "IN_PROGRESS"
    assert stored["outputData"] == {}
    assert stored["updateTime"] == task["updateTime"] + 8000
    clock.advance(8)  # 16 s after the poll, 8 s after the lease extension: still alive
    assert api.task(task["taskId"])["status"] == "IN_PROGRESS"
    clock.advance(2)
    assert api.task(task["taskId"])["status"] == "TIMED_OUT"
    assert api.workflow(workflow_id)["status"] == "TIMED_OUT"
    unknown = api.client.post(
        "/tasks", json={"workflowInstanceId": "any", "taskId": "nope", "status": "IN_PROGRESS", "extendLease": True}
    )
    assert unknown.status_code == 404


def test_never_polled_task_can_be_completed_by_id(api: Api) -> None:  # §12.14
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.workflow(workflow_id)["tasks"][0]
    assert task["status"] == "SCHEDULED"
    assert api.update(task, "COMPLETED").status_code == 200
    assert api.workflow(workflow_id)["status"] == "COMPLETED"
    assert api.queue_size("a") == 0


def test_update_by_reference_name(api: Api) -> None:  # §2.5
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    workflow_id = api.start("wf")
    task = api.poll_one("a")
    api.update(task, "IN_PROGRESS", outputData={"kept": 1})
    answer = api.client.post(f"/tasks/{workflow_id}/step0/COMPLETED", json={"added": 2}, params={"workerid": "ref-worker"})
    assert answer.status_code == 200 and answer.text == task["taskId"]
    stored = api.task(task["taskId"])
    assert stored["status"] == "COMPLETED" and stored["outputData"] == {"kept": 1, "added": 2}
    nothing = api.client.post(f"/tasks/{workflow_id}/step0/COMPLETED", json={})
    assert nothing.status_code == 200 and nothing.text == ""
    assert api.client.post(f"/tasks/{workflow_id}/step0/DONE", json={}).status_code == 500


def test_task_logs(api: Api) -> None:  # §2.7
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    api.start("wf")
    task = api.poll_one("a")
    assert api.client.get(f"/tasks/{task['taskId']}/log").status_code == 204
    assert api.client.post(f"/tasks/{task['taskId']}/log", content=b'"quoted line"').status_code == 200
    logs = [{"log": f"line {index}", "createdTime": index} for index in range(12)]
    api.update(task, "IN_PROGRESS", logs=logs)
    stored = api.client.get(f"/tasks/{task['taskId']}/log").json()
    assert stored[0] == {"log": '"quoted line"', "taskId": task["taskId"], "createdTime": stored[0]["createdTime"]}
    assert [entry["log"] for entry in stored[1:]] == [f"line {index}" for index in range(10)]  # at most 10 per update
