"""Test-side Conductor administration over plain HTTP: definitions, workflows, waiting.

Deliberately independent of perago's client (stdlib `urllib`), so a client bug cannot
hide itself in the test setup.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

TERMINAL_WORKFLOW = {"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"}


class ConductorAdmin:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text

    def register_task(self, name: str, **fields: Any) -> None:
        taskdef = {"name": name, "retryCount": 0, "responseTimeoutSeconds": 60, "ownerEmail": "t@example.com"}
        taskdef.update(fields)
        self.call("POST", "/metadata/taskdefs", [taskdef])

    def register_workflow(self, name: str, task_names: list[str]) -> None:
        tasks = [
            {
                "name": task_name,
                "taskReferenceName": f"step{index}",
                "type": "SIMPLE",
                "inputParameters": {"params": "${workflow.input.params}", "workspace": "${workflow.input.workspace}"},
            }
            for index, task_name in enumerate(task_names)
        ]
        self.call(
            "POST",
            "/metadata/workflow",
            {
                "name": name,
                "version": 1,
                "schemaVersion": 2,
                "ownerEmail": "t@example.com",
                "tasks": tasks,
                "outputParameters": {
                    "result": f"${{step{len(task_names) - 1}.output.result}}",
                    "workspace": f"${{step{len(task_names) - 1}.output.workspace}}",
                },
            },
        )

    def setup_single_task_workflow(self, task_name: str, **taskdef_fields: Any) -> str:
        workflow_name = f"{task_name}_flow"
        self.register_task(task_name, **taskdef_fields)
        self.register_workflow(workflow_name, [task_name])
        return workflow_name

    def start(self, workflow_name: str, params: Any, workspace: Any = None) -> str:
        workflow_input = {"params": params} if workspace is None else {"params": params, "workspace": workspace}
        return str(self.call("POST", f"/workflow/{workflow_name}", workflow_input))

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return self.call("GET", f"/workflow/{workflow_id}")

    def task(self, task_id: str) -> dict[str, Any]:
        return self.call("GET", f"/tasks/{task_id}")

    def wait_for_workflows(self, workflow_ids: list[str], timeout: float = 60.0) -> list[dict[str, Any]]:
        """Every workflow once terminal; fails the test with the stragglers' status on timeout."""
        deadline = time.monotonic() + timeout
        done: dict[str, dict[str, Any]] = {}
        while True:
            for workflow_id in workflow_ids:
                if workflow_id not in done:
                    workflow = self.workflow(workflow_id)
                    if workflow["status"] in TERMINAL_WORKFLOW:
                        done[workflow_id] = workflow
            if len(done) == len(workflow_ids):
                return [done[workflow_id] for workflow_id in workflow_ids]
            if time.monotonic() > deadline:
                pending = {wid: self.workflow(wid)["status"] for wid in workflow_ids if wid not in done}
                raise AssertionError(f"{len(pending)} workflows not finished: {dict(list(pending.items())[:5])}")
            time.sleep(0.05)


def http_status(admin: ConductorAdmin, method: str, path: str, body: Any = None) -> int:
    try:
        admin.call(method, path, body)
    except urllib.error.HTTPError as error:
        return error.code
    return 200
