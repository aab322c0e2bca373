"""A quick task whose output proves which input it saw; some inputs fail on purpose."""

from __future__ import annotations

import os
import signal
import threading

from pydantic import BaseModel

from perago import TaskFailed, task


class EchoParams(BaseModel):
    text: str
    count: int


class EchoResult(BaseModel):
    text: str
    doubled: int


@task(name="runtime.echo", owner_email="runtime-tests@example.com")
def echo(params: EchoParams) -> EchoResult:
    if params.text == "fail":
        raise TaskFailed("asked to fail")
    if params.text == "exit":
        raise SystemExit(3)
    if params.text == "os_exit":
        os._exit(7)
    if params.text == "killed_after_return":
        # The executor reports this result, then is SIGKILLed before it can do anything else.
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return EchoResult(text=params.text, doubled=params.count * 2)
