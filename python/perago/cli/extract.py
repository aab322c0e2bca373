"""`perago extract MODULE_TARGET -o PATH`: write the task's Conductor TaskDef JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perago.cli.app import app
from perago.cli.output import fail
from perago.cli.preflight import PERAGO_ERRORS, check_task_contract
from perago.config import load_runtime_config
from perago.task import load_module_task
from perago.taskdef import write_taskdef


@app.command()
def extract(
    module_target: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="The .json file to write.")],
) -> None:
    """Write the Conductor TaskDef JSON of a task module (nothing is registered)."""
    try:
        load_runtime_config(module_target)
        task = load_module_task(module_target)
        check_task_contract(task)
        written = write_taskdef(task, output)
    except (*PERAGO_ERRORS, ValueError) as exc:
        fail(str(exc))
    typer.echo(str(written))
