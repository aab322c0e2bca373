"""Payloads of the attempt-fence RPC between an executor and the broker (process mode).

The executor cannot talk to Conductor; before publishing a workspace it asks the broker,
over its own slot socket (`ExecutorChannel.fence`), to reload the task. Request: the
task id, UTF-8. Reply: Conductor's task JSON exactly as `GET /tasks/{taskId}` returned
it, or `{"fenceError": "<text>"}` when the broker could not reload it. The reply travels
on the same slot and generation as the request, so it cannot reach another attempt
(runtime.md W9).
"""

from __future__ import annotations

import json
from typing import Any

ERROR_KEY = "fenceError"


class FenceReloadError(RuntimeError):
    """The broker could not reload the attempt; the attempt fails with this text."""


def encode_request(task_id: str) -> bytes:
    return task_id.encode()


def decode_request(request: bytes) -> str:
    return request.decode()


def encode_error(text: str) -> bytes:
    return json.dumps({ERROR_KEY: text}).encode()


def decode_reply(reply: bytes, task_id: str) -> dict[str, Any]:
    """The reloaded task, or `FenceReloadError` naming the task and the broker's error."""
    try:
        parsed = json.loads(reply)
    except ValueError:
        raise FenceReloadError(f"broker answered the attempt fence of task {task_id} with invalid JSON") from None
    if not isinstance(parsed, dict):
        raise FenceReloadError(f"broker answered the attempt fence of task {task_id} with a non-object")
    if ERROR_KEY in parsed:
        raise FenceReloadError(f"broker failed to reload attempt {task_id}: {parsed[ERROR_KEY]}")
    return parsed
