"""`perago start MODULE_TARGET [-j N] [--execution-mode process|thread]`: check, then run."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from perago.cli.app import app
from perago.cli.output import fail, warn
from perago.launch import StartCheckFailed, check_start, run


class ExecutionModeChoice(str, Enum):
    process = "process"
    thread = "thread"


@app.command()
def start(
    module_target: str,
    j: Annotated[int, typer.Option("-j", min=1, help="Executor processes (process mode) or task threads.")] = 1,
    execution_mode: Annotated[
        Optional[ExecutionModeChoice],  # noqa: UP007 - typer reads Optional
        typer.Option("--execution-mode", help="Overrides PERAGO_EXECUTION_MODE (default process)."),
    ] = None,
) -> None:
    """Poll Conductor and run the module's task until SIGINT/SIGTERM."""
    try:
        plan = check_start(module_target, execution_mode=execution_mode.value if execution_mode else None, warn=warn)
    except StartCheckFailed as exc:
        fail(str(exc))
    raise typer.Exit(code=run(plan, j))
