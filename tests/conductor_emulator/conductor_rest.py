"""A thin REST client for the Conductor emulator's tests: raw answers, so tests assert what the wire says."""

from __future__ import annotations

from typing import Any

import httpx


class Api:
    """Plain REST calls against one emulator; every method returns the httpx.Response."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        self.client.close()

    # metadata
    def register_taskdefs(self, *taskdefs: dict[str, Any]) -> httpx.Response:
        return self.client.post("/metadata/taskdefs", json=list(taskdefs))

    def register_workflow(self, name: str, tasks: list[dict[str, Any]], **fields: Any) -> httpx.Response:
        return self.client.post("/metadata/workflow", json={"name": name, "version": 1, "tasks": tasks, **fields})

    def chain(self, name: str, *task_types: str, **fields: Any) -> httpx.Response:
        """Register a linear workflow `name` of SIMPLE tasks t0..tn (refs `step0`..)."""
        tasks = [{"name": task_type, "taskReferenceName": f"step{index}"} for index, task_type in enumerate(task_types)]
        return self.register_workflow(name, tasks, **fields)

    # workflows
    def start(self, name: str, workflow_input: dict[str, Any] | None = None, **params: Any) -> str:
        answer = self.client.post(f"/workflow/{name}", json=workflow_input or {}, params=params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        return answer.text

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/workflow/{workflow_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    # tasks
    def batch_poll(self, task_type: str, count: int = 1, timeout: int = 0, **params: Any) -> httpx.Response:
        return self.client.get(f"/tasks/poll/batch/{task_type}", params={"count": count, "timeout": timeout, **params})

    def poll_one(self, task_type: str, **params: Any) -> dict[str, Any]:
        answer = self.batch_poll(task_type, 1, 0, **params)
        assert answer.status_code == 200, answer.text
        tasks = answer.json()
        assert len(tasks) == 1, f"expected one {task_type} task, got {tasks}"
        return tasks[0]

    def update(self, task: dict[str, Any], status: str, **fields: Any) -> httpx.Response:
        body = {"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"], "status": status, **fields}
        return self.client.post("/tasks", json=body)

    def update_v2(self, task: dict[str, Any], status: str, **fields: Any) -> httpx.Response:
        body = {"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"], "status": status, **fields}
        return self.client.post("/tasks/update-v2", json=body)

    def task(self, task_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def queue_size(self, task_type: str, domain: str | None = None) -> int:
        params = {"taskType": task_type} if domain is None else {"taskType": task_type, "domain": domain}
        answer = self.client.get("/tasks/queue/size", params=params)
        assert answer.status_code == 200, answer.text
        return int(answer.json())


def fast_taskdef(name: str, **fields: Any) -> dict[str, Any]:
    """A TaskDef whose retries come without the 60 s default delay."""
    return {"name": name, "retryCount": 0, "retryDelaySeconds": 0, **fields}
