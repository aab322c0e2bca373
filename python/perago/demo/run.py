"""`perago demo` from start to end: emulator, definitions, runtime, workflows, summary."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import perago
from perago.config import DEFAULT_EXECUTION_MODE
from perago.demo.children import EmulatorProcess, RuntimeProcess, tail
from perago.demo.errors import DemoError
from perago.demo.conductor_admin import ConductorAdmin
from perago.demo.progress import ProgressBar, WorkflowTracker
from perago.demo.submission import WorkflowSubmitter
from perago.demo.summary import DemoSummary
from perago.task import TaskDefinition, load_module_task
from perago.taskdef import build_taskdef

EXAMPLES_DIR = Path(perago.__file__).resolve().parents[2] / "examples"
DEMO_MODULE = "perago_examples.greet"
DEMO_WORKFLOW = "perago_demo_greet"
DEFAULT_TASKS = 2000
DEFAULT_PROCESSES = 4
READY_TIMEOUT_SECONDS = 60.0
STALL_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 30.0
TICK_SECONDS = 0.1
REFRESH_LIMIT = 250
INTERRUPTED_EXIT_CODE = 130
# The runtime must see the emulator and the demo's own roots, never the user's settings.
_USER_SETTINGS_PREFIXES = ("CONDUCTOR_", "LAKECTL_", "OTEL_", "PERAGO_")


def greeting_params(index: int) -> dict[str, Any]:
    return {"name": f"world {index}"}


def expected_output(index: int) -> dict[str, Any]:
    return {"result": {"text": f"hello world {index}"}}


def load_demo_task(examples_dir: Path = EXAMPLES_DIR) -> TaskDefinition:
    """Import the demo's task module from the source checkout's `examples/`."""
    if not (examples_dir / "perago_examples").is_dir():
        raise DemoError(
            f"perago demo runs the example task modules of a source checkout, expected in {examples_dir}; "
            "run it from a clone of the perago repository (make demo)"
        )
    if str(examples_dir) not in sys.path:
        sys.path.insert(0, str(examples_dir))
    return load_module_task(DEMO_MODULE)


def runtime_environment(
    base: Mapping[str, str], *, conductor_url: str, scratch: Path, examples_dir: Path
) -> dict[str, str]:
    """The runtime's environment: the caller's, minus any perago/Conductor/LakeFS/OTel
    settings, plus the emulator's URL, throwaway roots and the examples on PYTHONPATH."""
    env = {name: value for name, value in base.items() if not name.startswith(_USER_SETTINGS_PREFIXES)}
    env["CONDUCTOR_SERVER_URL"] = conductor_url
    env["PERAGO_WORKSPACE_ROOT"] = str(scratch / "workspaces")
    env["PERAGO_LOG_ROOT"] = str(scratch / "logs")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(examples_dir), base.get("PYTHONPATH")]))
    return env


def run_demo(
    *,
    tasks: int = DEFAULT_TASKS,
    processes: int = DEFAULT_PROCESSES,
    execution_mode: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the demo; returns the exit status (0 when every workflow completed as expected).

    Raises `DemoError` when it cannot run (the message says why).
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr

    def say(text: str) -> None:
        print(f"perago demo: {text}", file=err, flush=True)

    task = load_demo_task()
    mode = execution_mode or DEFAULT_EXECUTION_MODE
    try:
        with tempfile.TemporaryDirectory(prefix="perago-demo-") as scratch_dir, _sigterm_interrupts():
            summary, runtime_status = _run(Path(scratch_dir), task, tasks, processes, mode, say, err)
    except KeyboardInterrupt:
        say("interrupted")
        return INTERRUPTED_EXIT_CODE
    print(f"perago demo: {tasks:,} workflows of {task.name} ({DEMO_MODULE}), {mode} mode, -j {processes}", file=out)
    print(summary.table(), file=out, flush=True)
    if runtime_status != 0:
        say(f"perago start did not drain cleanly (exit status {runtime_status})")
        return 1
    return 0 if summary.ok else 1


def _run(
    scratch: Path, task: TaskDefinition, tasks: int, processes: int, mode: str, say: Callable[[str], None], err: TextIO
) -> tuple[DemoSummary, int | None]:
    emulator = EmulatorProcess(scratch / "emulator.out")
    runtime: RuntimeProcess | None = None
    runtime_status: int | None = None
    admin: ConductorAdmin | None = None
    try:
        emulator.start()
        say(f"Conductor emulator at {emulator.url}")
        admin = ConductorAdmin(emulator.url)
        admin.register_taskdef(build_taskdef(task))
        admin.register_single_task_workflow(DEMO_WORKFLOW, task.name)
        env = runtime_environment(os.environ, conductor_url=emulator.url, scratch=scratch, examples_dir=EXAMPLES_DIR)
        runtime = RuntimeProcess(DEMO_MODULE, processes=processes, execution_mode=mode, env=env, cwd=scratch)
        runtime.start()
        say(f"started `perago start {DEMO_MODULE} -j {processes} --execution-mode {mode}`")
        _wait_until_polling(admin, runtime, task.name)
        say(f"submitting {tasks:,} workflows")
        submitter = WorkflowSubmitter(admin, DEMO_WORKFLOW, greeting_params, tasks)
        tracker = WorkflowTracker(admin, submitter.ids)
        submitter.start()
        try:
            _follow(admin, task.name, processes, submitter, tracker, runtime, ProgressBar(tasks, err))
        finally:
            submitter.stop()
        summary = DemoSummary.of(tracker.finished, tasks, expected_output, submitter.workflows_per_second)
    finally:
        try:
            if runtime is not None:
                say("stopping: SIGTERM to perago start, waiting for its drain (Ctrl-C again to kill it)")
                runtime_status = runtime.drain(DRAIN_TIMEOUT_SECONDS)
                if runtime_status is None:
                    say("perago start was killed before its drain ended")
        finally:
            if admin is not None:
                admin.close()
            emulator.stop()
    return summary, runtime_status


def _wait_until_polling(admin: ConductorAdmin, runtime: RuntimeProcess, task_name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not admin.polled_by_a_worker(task_name):
        runtime.check_running()
        if time.monotonic() > deadline:
            raise DemoError(
                f"perago start did not poll for {task_name} within {READY_TIMEOUT_SECONDS:.0f} s; "
                f"it said:\n{tail(runtime.output)}"
            )
        time.sleep(TICK_SECONDS)


def _follow(
    admin: ConductorAdmin,
    task_name: str,
    processes: int,
    submitter: WorkflowSubmitter,
    tracker: WorkflowTracker,
    runtime: RuntimeProcess,
    bar: ProgressBar,
) -> None:
    """Redraw progress from the queue size until the workers have taken every task, then
    read every workflow back; give up when nothing moves for a minute."""
    watch = _StallWatch(runtime, len(submitter.ids))
    taken_and_done = 0
    while True:
        time.sleep(TICK_SECONDS)
        runtime.check_running()
        queued = admin.queue_size(task_name)
        if submitter.done and queued == 0:
            break
        # At most one task per worker is taken but not yet done.
        taken_and_done = max(taken_and_done, submitter.submitted - queued - processes)
        watch.saw(taken_and_done)
        bar.draw(taken_and_done, submitter.submitted)
    bar.stop_clock()
    while not tracker.all_finished:
        runtime.check_running()
        if not tracker.refresh(limit=REFRESH_LIMIT):
            time.sleep(TICK_SECONDS)
        watch.saw(len(tracker.finished))
    bar.draw(len(tracker.finished), submitter.submitted, final=True)


class _StallWatch:
    """Raises `DemoError` once the count it is shown has not moved for STALL_TIMEOUT_SECONDS."""

    def __init__(self, runtime: RuntimeProcess, total: int) -> None:
        self._runtime = runtime
        self._total = total
        self._count = -1
        self._since = time.monotonic()

    def saw(self, count: int) -> None:
        now = time.monotonic()
        if count != self._count:
            self._count, self._since = count, now
        elif now - self._since > STALL_TIMEOUT_SECONDS:
            raise DemoError(
                f"no progress in the last {STALL_TIMEOUT_SECONDS:.0f} s (at {count} of {self._total} workflows); "
                f"perago start said:\n{tail(self._runtime.output)}"
            )


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the demo the way Ctrl-C does (KeyboardInterrupt, then a clean stop)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
