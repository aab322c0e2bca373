"""The `perago` Typer application and its root options; commands attach themselves to `app`."""

from __future__ import annotations

from typing import Annotated

import typer

import perago

app = typer.Typer(no_args_is_help=True)


def _print_version(requested: bool) -> None:
    if requested:
        typer.echo(perago.__version__)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Run typed Python functions as Conductor task workers."""
