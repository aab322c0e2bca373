"""`python -m perago.executor MODULE_TARGET`: one process-mode executor slot.

Started by the Rust supervisor with its slot socket (`PERAGO_SLOT_FD`). It imports the
task module, opens its JSONL log, says Ready, then runs one assignment at a time: the
Assign frame carries Conductor's task JSON as received and a fresh execution id; the
attempt (`perago.attempt`) turns it into TaskResult JSON for the Conductor-visible
worker id, which goes back in a Complete frame for the broker to send as is. A bad
input or a raising task fails that task only. SIGINT/SIGTERM only set a flag: the
current task finishes and is reported, then the process exits; a Stop frame ends it
between tasks. Boot problems (configuration, import) exit 1 with the traceback on
stderr, which the supervisor reports. A `BaseException` from task code (e.g.
`SystemExit`) ends the process; the broker then fails that task to Conductor.
A metrics-enabled task gets an OTLP recorder (attempt duration, workspace I/O, the task's
own samples), shut down — flushing what is left — when the loop ends.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Mapping
from typing import Any

from loguru import logger

from perago import _core
from perago.attempt import AttemptRunner, WorkspaceRuntime
from perago.conductor import conductor_worker_id
from perago.config import RuntimeConfig, load_runtime_config
from perago.fence_rpc import decode_reply, encode_request
from perago.metrics import MetricRecorder, worker_metrics
from perago.runtime_logging import configure_process_logging, log_process_started
from perago.task import TaskDefinition, load_module_task
from perago.worker_identity import resolve_worker_id


FENCE_TIMEOUT_SECONDS = 120.0


class Executor:
    """The executor loop around one `ExecutorChannel`."""

    def __init__(self, channel: _core.ExecutorChannel, conductor_worker_id: str) -> None:
        self.channel = channel
        self.attempts: AttemptRunner | None = None
        self.conductor_worker_id = conductor_worker_id
        self.stop_requested = False
        self.dispatch_id: int | None = None

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def serve(self) -> int:
        if self.attempts is None:
            raise RuntimeError("Executor.serve needs an AttemptRunner")
        # Looked up once: the loop below runs once per task.
        recv, complete, run_json = self.channel.recv, self.channel.complete, self.attempts.run_json
        stop, conductor_worker_id = _core.Stop, self.conductor_worker_id
        self.channel.ready()
        while not self.stop_requested:
            message = recv(None)
            if message is None:
                continue
            if isinstance(message, stop):
                logger.info("process executor stopping", broker_gone=message.closed)
                return 0
            self.dispatch_id = dispatch_id = message.dispatch_id
            execution_id = message.execution_id
            try:
                result = run_json(message.task, execution_id, conductor_worker_id)
            finally:
                self.dispatch_id = None
            complete(dispatch_id, execution_id, result)
        logger.info("process executor stopping", signalled=True)
        return 0

    def reload_task(self, task_id: str) -> Mapping[str, Any]:
        """The attempt fence's reload, answered by the broker over the slot socket."""
        if self.dispatch_id is None:
            raise RuntimeError("attempt fence called outside an assignment")
        reply = self.channel.fence(self.dispatch_id, encode_request(task_id), FENCE_TIMEOUT_SECONDS)
        return decode_reply(reply, task_id)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m perago.executor MODULE_TARGET\n")
        return 2
    module_target = args[0]
    channel = _core.ExecutorChannel.from_env()
    config, task = load_task(module_target)
    return serve_slot(channel, module_target, config, task)


def load_task(module_target: str) -> tuple[RuntimeConfig, TaskDefinition]:
    """The boot work that does not depend on the slot: configuration and the task module
    (and the workspace stack it needs). The warm spare (`perago.spare`) does it ahead of time."""
    config = load_runtime_config(module_target, probe_roots=False)
    task = load_module_task(module_target)
    if task.has_workspace:
        importlib.import_module("perago.workspace")  # so a spare has it warm too
    return config, task


def serve_slot(
    channel: _core.ExecutorChannel, module_target: str, config: RuntimeConfig, task: TaskDefinition
) -> int:
    """Open the worker's log, build the attempt runner, install the signal flags, serve."""
    worker_id = channel.worker_id or resolve_worker_id(module_target)
    log_file = configure_process_logging(config, module_target=module_target, worker_id=worker_id)
    log_process_started("executor", worker_id=worker_id, module_target=module_target, log_file=log_file)
    executor = Executor(channel, conductor_worker_id(config.worker_id_prefix))
    metrics = worker_metrics(task, config)
    try:
        executor.attempts = AttemptRunner(
            task,
            worker_id=worker_id,
            failure_reason_max_length=config.failure_reason_max_length,
            workspace_runtime=_workspace_runtime(task, config, executor, metrics) if task.has_workspace else None,
            metrics=metrics,
        )
        signal.signal(signal.SIGTERM, executor.request_stop)
        signal.signal(signal.SIGINT, executor.request_stop)
        return executor.serve()
    finally:
        if metrics is not None:
            metrics.shutdown()


def _workspace_runtime(
    task: TaskDefinition, config: RuntimeConfig, executor: Executor, metrics: MetricRecorder | None
) -> WorkspaceRuntime:
    from perago.workspace import workspace_attempts_from_config

    return workspace_attempts_from_config(task, config, executor.reload_task, metrics)


if __name__ == "__main__":
    sys.exit(main())
