"""What the demo asks of Conductor as its administrator: definitions, workflows, poll data.

Over perago's keep-alive transport (the runtime dependencies have no other HTTP client),
one connection, so submitting thousands of workflows costs the demo little.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from perago.conductor.errors import ConductorTransportError
from perago.conductor.transport import HttpTransport, ServerAddress
from perago.demo.errors import DemoError


class ConductorAdmin:
    def __init__(self, server_url: str) -> None:
        self._transport = HttpTransport(ServerAddress.parse(server_url), timeout_seconds=30.0)

    def close(self) -> None:
        self._transport.close()

    def register_taskdef(self, taskdef: dict[str, Any]) -> None:
        self._call("POST", "/metadata/taskdefs", [taskdef])

    def register_single_task_workflow(self, workflow_name: str, task_name: str) -> None:
        """Version 1 of `workflow_name`: the task gets `params` from the workflow input and
        the workflow's output is the task's `result`."""
        self._call("POST", "/metadata/workflow", {
            "name": workflow_name,
            "version": 1,
            "schemaVersion": 2,
            "ownerEmail": "demo@example.com",
            "tasks": [{
                "name": task_name,
                "taskReferenceName": "task",
                "type": "SIMPLE",
                "inputParameters": {"params": "${workflow.input.params}"},
            }],
            "outputParameters": {"result": "${task.output.result}"},
        })  # fmt: skip

    def start_workflow(self, workflow_name: str, params: dict[str, Any]) -> str:
        return str(self._call("POST", f"/workflow/{quote(workflow_name, safe='')}", {"params": params}))

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        answer = self._call("GET", f"/workflow/{quote(workflow_id, safe='')}?includeTasks=true")
        if not isinstance(answer, dict):
            raise DemoError(f"Conductor answered workflow {workflow_id} with {answer!r}")
        return answer

    def queue_size(self, task_name: str) -> int:
        """Tasks of `task_name` waiting for a worker (scheduled, not yet polled)."""
        return int(self._call("GET", f"/tasks/queue/size?taskType={quote(task_name, safe='')}"))

    def polled_by_a_worker(self, task_name: str) -> bool:
        """Has any worker polled for `task_name` yet (the runtime is up and asking)?"""
        return bool(self._call("GET", f"/tasks/queue/polldata?taskType={quote(task_name, safe='')}"))

    def _call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        try:
            response = self._transport.request(method, path, data)
        except ConductorTransportError as exc:
            raise DemoError(f"the Conductor emulator stopped answering: {exc}") from exc
        if not 200 <= response.status < 300:
            raise DemoError(f"Conductor answered {method} {path} with HTTP {response.status}: {response.body[:300]!r}")
        text = response.body.decode()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text
