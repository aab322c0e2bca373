"""The `perago` command line (console script `perago = "perago.cli:main"`).

`app` is the Typer application (defined in `perago.cli.app`). Each command lives in its
own module, which imports `app` from `perago.cli.app` and decorates its function with
`@app.command()`; importing the module registers the command. To add a command, write
`perago/cli/<name>.py` that way and add its module to the import line below — nothing
else changes. Commands appear in `perago --help` in import order.

Shared pieces: `perago.cli.output` prints the `error: ` / `warning: ` lines (stderr, exit
status 1 for errors), `perago.cli.preflight` runs the contract checks every command
shares (read-only budget warning, RootModel rejection, ConfigDict warning).
"""

from __future__ import annotations

from perago.cli.app import app
from perago.cli import check, demo, dev, extract, reconcile, start  # noqa: F401  (importing a command module registers it)

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the console script."""
    app(prog_name="perago")
