"""Runs the official conductor-python TaskHandler against CONDUCTOR_SERVER_URL until killed.

Started as a subprocess by test_conductor_sdk_contract.py, so the SDK's multiprocessing (spawn)
stays out of the pytest process. Serves the task types given on the command line, each
with a worker that adds 1 to `value`.
"""

# No `from __future__ import annotations`: the SDK reads parameter annotations as real types.
import signal
import sys
import time

from conductor.client.automator.task_handler import TaskHandler
from conductor.client.configuration.configuration import Configuration
from conductor.client.worker.worker import Worker


def add_one(value: int) -> dict:
    return {"value": value + 1}


def main() -> None:
    workers = [Worker(task_definition_name=task_type, execute_function=add_one, poll_interval=10) for task_type in sys.argv[1:]]
    handler = TaskHandler(
        workers=workers, configuration=Configuration(), scan_for_annotated_workers=False, monitor_processes=False
    )
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    handler.start_processes()
    print("sdk workers started", flush=True)
    while not stopping:
        time.sleep(0.1)
    handler.stop_processes()


if __name__ == "__main__":
    main()
