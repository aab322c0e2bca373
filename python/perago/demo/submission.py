"""Starting the demo's workflows from a few threads while the runtime works them off.

One Python thread on one connection is often slower than the runtime it feeds; a couple
of threads, each on its own keep-alive connection, keep Conductor's queue ahead of the
workers on most machines. The demo reports the submit rate beside the task rate, so a
run where submitting was the limit says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from perago.demo.conductor_admin import ConductorAdmin

SUBMITTER_THREADS = 2


class WorkflowSubmitter:
    """`ids[i]` becomes the id of workflow i once Conductor has started it."""

    def __init__(
        self,
        admin: ConductorAdmin,
        workflow_name: str,
        params_of: Callable[[int], dict[str, Any]],
        total: int,
        threads: int = SUBMITTER_THREADS,
    ) -> None:
        self.ids: list[str | None] = [None] * total
        self._admin = admin
        self._workflow_name = workflow_name
        self._params_of = params_of
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._count = 0
        self._count_lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._submit, args=(first, threads), name=f"perago-demo-submit-{first}", daemon=True
            )
            for first in range(threads)
        ]
        self._started = 0.0
        self._ended = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def submitted(self) -> int:
        return self._count

    @property
    def done(self) -> bool:
        """Every workflow started; raises the first submitter error instead, if any."""
        if self._errors:
            raise self._errors[0]
        return self._count == len(self.ids)

    @property
    def workflows_per_second(self) -> float:
        elapsed = (self._ended or time.monotonic()) - self._started
        return self._count / elapsed if elapsed > 0 else 0.0

    def _submit(self, first: int, step: int) -> None:
        try:
            for index in range(first, len(self.ids), step):
                if self._stop.is_set():
                    return
                self.ids[index] = self._admin.start_workflow(self._workflow_name, self._params_of(index))
                with self._count_lock:
                    self._count += 1
                    if self._count == len(self.ids):
                        self._ended = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread through `done`
            self._errors.append(exc)
