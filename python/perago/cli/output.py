"""The CLI's output contract: `error: ` and `warning: ` lines on stderr, exit status 1."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    """Print `error: <message>` on stderr and end the command with exit status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def warn(message: str) -> None:
    """Print `warning: <message>` on stderr; the exit status is unaffected."""
    typer.echo(f"warning: {message}", err=True)


def configured(present: bool) -> str:
    """`configured` / `not configured`, as `perago check` reports each connection."""
    return "configured" if present else "not configured"
