"""`perago demo [--tasks N] [-j N]`: run the README's example task module end to end."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from perago.cli.app import app
from perago.cli.output import fail
from perago.cli.start import ExecutionModeChoice
from perago.demo import DEFAULT_PROCESSES, DEFAULT_TASKS, DemoError, run_demo


@app.command()
def demo(
    tasks: Annotated[int, typer.Option("--tasks", min=1, help="Workflows to submit (one task each).")] = DEFAULT_TASKS,
    j: Annotated[
        int, typer.Option("-j", min=1, help="Executor processes (process mode) or task threads.")
    ] = DEFAULT_PROCESSES,
    execution_mode: Annotated[
        Optional[ExecutionModeChoice],  # noqa: UP007 - typer reads Optional
        typer.Option("--execution-mode", help="process (the default) or thread."),
    ] = None,
) -> None:
    """Run an example task module on the embedded Conductor emulator; print throughput and latency."""
    try:
        code = run_demo(tasks=tasks, processes=j, execution_mode=execution_mode.value if execution_mode else None)
    except DemoError as exc:
        fail(str(exc))
    raise typer.Exit(code=code)
