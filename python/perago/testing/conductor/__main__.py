"""Run one emulated Conductor in this process until SIGINT/SIGTERM.

Used by `ConductorEmulator(in_process=False)`; prints one ready line with the port. With
`--parent-pid` it also stops when that process is gone, so a killed test run leaves no
orphaned emulator behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from perago.testing.conductor.clock import SystemClock
from perago.testing.conductor.engine import Engine
from perago.testing.conductor.faults import FaultPlan
from perago.testing.conductor.routes import ConductorApp
from perago.testing.conductor.server import READY_LINE, new_event_loop, serve
from perago.testing.conductor.settings import EmulatorSettings


async def _stop_when_orphaned(parent_pid: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(1)
    stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m perago.testing.conductor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--settings", default=None, help="EmulatorSettings as JSON")
    parser.add_argument("--faults", default=None, help="FaultPlan as JSON")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--parent-pid", type=int, default=None, help="stop when this process has exited")
    args = parser.parse_args()
    settings = EmulatorSettings.from_json(args.settings) if args.settings else EmulatorSettings()
    faults = FaultPlan.from_json(args.faults) if args.faults else None
    app = ConductorApp(Engine(settings, SystemClock(), args.seed), faults)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    listener = loop.run_until_complete(serve(app, args.host, args.port))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watchdog = loop.create_task(_stop_when_orphaned(args.parent_pid, stop)) if args.parent_pid is not None else None
    print(f"{READY_LINE} {listener.port}", flush=True)
    loop.run_until_complete(stop.wait())
    if watchdog is not None:
        watchdog.cancel()
        loop.run_until_complete(asyncio.gather(watchdog, return_exceptions=True))
    loop.run_until_complete(listener.close())
    loop.close()


if __name__ == "__main__":
    main()
