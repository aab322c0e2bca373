"""`perago check MODULE_TARGET`: validate configuration and task module, print a summary."""

from __future__ import annotations

import typer

from perago.cli.app import app
from perago.cli.output import configured, fail
from perago.cli.preflight import PERAGO_ERRORS, check_task_contract
from perago.config import load_runtime_config
from perago.task import load_module_task
from perago.taskdef import build_taskdef


@app.command()
def check(module_target: str) -> None:
    """Validate a task module, its TaskDef and the local runtime configuration."""
    try:
        config = load_runtime_config(module_target)
        task = load_module_task(module_target)
        check_task_contract(task)
        build_taskdef(task)
    except PERAGO_ERRORS as exc:
        fail(str(exc))
    for line in (
        f"ok: {task.name}",
        f"workspace_root: {config.workspace_root}",
        f"log_root: {config.log_root}",
        f"worker_id_prefix: {config.worker_id_prefix}",
        f"conductor: {configured(config.conductor is not None)}",
        f"lakefs: {configured(config.lakefs is not None)}",
        f"metrics: {configured(config.metrics is not None)}",
    ):
        typer.echo(line)
