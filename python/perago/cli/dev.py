"""`perago dev`: run the emulators on loopback in the foreground for local development.

Prints one `export NAME=value` line per variable a shell needs to point perago (or any
Conductor/lakeFS client) at them, then serves until SIGINT or SIGTERM. State is kept in
memory by the Conductor emulator; `--data-dir` is where the lakeFS emulator keeps its
objects and graph, so a dev lakeFS survives restarts (without it, a temporary directory
is used and removed on stop).
"""

from __future__ import annotations

import shlex
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Annotated, Optional

import typer

from perago.cli.app import app
from perago.cli.output import fail
from perago.testing.conductor import ConductorEmulator
from perago.testing.lakefs import LakeFSEmulator


@app.command()
def dev(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    conductor_port: Annotated[
        int, typer.Option("--conductor-port", min=0, max=65535, help="Conductor port (0: a free one).")
    ] = 0,
    lakefs_port: Annotated[int, typer.Option("--lakefs-port", min=0, max=65535, help="lakeFS port (0: a free one).")] = 0,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where the lakeFS emulator keeps its data.")] = None,  # noqa: UP007, UP045 - typer reads Optional
) -> None:
    """Run the local emulators until Ctrl-C; print the variables to export."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ExitStack() as running:
            try:
                conductor = running.enter_context(ConductorEmulator(host=host, port=conductor_port))
            except OSError as error:
                fail(f"the Conductor emulator cannot listen on {host}:{conductor_port}: {error.strerror or error}")
            try:
                lakefs = running.enter_context(LakeFSEmulator(host=host, port=lakefs_port, data_dir=data_dir))
            except OSError as error:
                fail(f"the lakeFS emulator cannot listen on {host}:{lakefs_port}: {error.strerror or error}")
            exports = {"CONDUCTOR_SERVER_URL": conductor.url, **lakefs.env()}
            for name, value in exports.items():
                typer.echo(f"export {name}={shlex.quote(value)}")
            typer.echo("perago dev: emulators running; Ctrl-C to stop", err=True)
            while not stop.wait(0.5):
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    typer.echo("perago dev: stopped", err=True)
