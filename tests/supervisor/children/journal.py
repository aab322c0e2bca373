"""Append-only JSON-lines journal shared by the test children (one write per event)."""

from __future__ import annotations

import json
import os
import time


def record(event: str, **fields: object) -> None:
    path = os.environ.get("TEST_JOURNAL")
    if not path:
        return
    line = (
        json.dumps(
            {"event": event, "time": time.monotonic(), "pid": os.getpid(), **fields}
        )
        + "\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
