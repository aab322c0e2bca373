"""`ConductorEmulator`: the emulated Conductor as a context manager.

Two ways to run it:
- in-process (default): an asyncio loop in a daemon thread. Tests can pass a
  `ManualClock` and advance it. Fine for tests; it shares the GIL with the caller.
- `in_process=False`: a child process (`python -m perago.testing.conductor`), so a
  benchmark's worker runtime does not compete with the emulator for the GIL. The clock
  is then the system clock.

uvloop is used when it is importable (see http11.py for why the stack is what it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

from perago.testing.conductor.clock import Clock, ManualClock, SystemClock
from perago.testing.conductor.engine import Engine
from perago.testing.conductor.faults import FaultPlan
from perago.testing.conductor.http11 import HttpProtocol
from perago.testing.conductor.routes import ConductorApp
from perago.testing.conductor.settings import EmulatorSettings

READY_LINE = "perago-conductor-emulator listening on port"


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


class Listener:
    """A listening emulator inside one event loop: socket, sweeper and open connections."""

    def __init__(self, server: asyncio.Server, sweeper: asyncio.Task[None], connections: set[HttpProtocol]) -> None:
        self.server = server
        self.sweeper = sweeper
        self.connections = connections

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, close every client connection, stop the sweeper."""
        self.server.close()
        for connection in list(self.connections):
            connection.close()
        self.sweeper.cancel()
        await asyncio.gather(self.sweeper, return_exceptions=True)
        await asyncio.sleep(0)  # let transports run their close callbacks


async def serve(app: ConductorApp, host: str, port: int) -> Listener:
    """Listen on (host, port) and start the timer sweeper (the §4.6 "sweeper", every tick)."""
    loop = asyncio.get_running_loop()
    connections: set[HttpProtocol] = set()
    server = await loop.create_server(lambda: HttpProtocol(app.handle, connections), host, port, backlog=1024)
    engine = app.engine
    tick = app.settings.tick_seconds

    async def sweep() -> None:
        while True:
            await asyncio.sleep(tick)
            try:
                engine.process_timers()
                engine.wake_due_queues()
            except Exception:  # noqa: BLE001 - the sweeper must survive a bad workflow
                logging.getLogger("perago.testing.conductor").exception("emulator sweep failed")

    return Listener(server, loop.create_task(sweep()), connections)  # type: ignore[arg-type]


class ConductorEmulator:
    """An emulated Conductor OSS server on loopback (spec conductor-api.md).

    >>> from perago.testing.conductor import ConductorEmulator, ManualClock
    >>> clock = ManualClock()
    >>> with ConductorEmulator(clock=clock) as conductor:   # what CONDUCTOR_SERVER_URL should be
    ...     conductor.url.startswith("http://127.0.0.1:") and conductor.url.endswith("/api")
    True

    Keyword arguments not named below are `EmulatorSettings` fields (`server_version`,
    `auth_keys`, `update_v2_status`, `rate_limits`, ...).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        faults: FaultPlan | None = None,
        in_process: bool = True,
        settings: EmulatorSettings | None = None,
        seed: int | None = None,
        **setting_fields: Any,
    ) -> None:
        if settings is not None and setting_fields:
            raise TypeError(f"pass either settings= or setting fields, not both (got {sorted(setting_fields)})")
        self.settings = settings or EmulatorSettings(**setting_fields)
        if not in_process and clock is not None:
            raise ValueError("a clock can only be injected with in_process=True; a child emulator uses the system clock")
        self.host = host
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.faults = faults
        self.in_process = in_process
        self._requested_port = port
        self._seed = seed
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Listener | None = None
        self._app: ConductorApp | None = None
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """Base URL ending in `/api`, as CONDUCTOR_SERVER_URL expects."""
        if not self.port:
            raise RuntimeError("ConductorEmulator is not running; use it as a context manager or call start()")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/api"

    @property
    def pid(self) -> int | None:
        """Process id of the child emulator (`in_process=False`), else None."""
        return self._process.pid if self._process is not None else None

    def request_counts(self) -> dict[str, int]:
        """Requests served so far per endpoint name (see faults.ENDPOINTS); in-process mode only."""
        if self._app is None:
            raise RuntimeError("request_counts() needs a running in-process emulator")
        return dict(self._app.request_counts)

    @property
    def manual_clock(self) -> ManualClock:
        if not isinstance(self.clock, ManualClock):
            raise TypeError("this emulator was not given a ManualClock")
        return self.clock

    def start(self) -> ConductorEmulator:
        if self.port:
            raise RuntimeError("ConductorEmulator already started")
        if self.in_process:
            self._start_thread()
        else:
            self._start_process()
        return self

    def stop(self) -> None:
        if self._loop is not None:
            loop, listener = self._loop, self._listener

            async def shutdown() -> None:
                if listener is not None:
                    await listener.close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
                loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop = None
        if self._process is not None:
            process = self._process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
            self._process = None
        self.port = 0

    def __enter__(self) -> ConductorEmulator:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ modes
    def _start_thread(self) -> None:
        engine = Engine(self.settings, self.clock, self._seed)
        app = ConductorApp(engine, self.faults)
        self._app = app
        loop = new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._listener = loop.run_until_complete(serve(app, self.host, self._requested_port))
                self.port = self._listener.port
            except BaseException as error:  # noqa: BLE001 - handed to the starting thread
                failure.append(error)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="perago-conductor-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._loop = None
            raise failure[0]

    def _start_process(self) -> None:
        command = [
            sys.executable,
            "-m",
            "perago.testing.conductor",
            "--host",
            self.host,
            "--port",
            str(self._requested_port),
            "--settings",
            self.settings.to_json(),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.faults is not None:
            command += ["--faults", self.faults.to_json()]
        if self._seed is not None:
            command += ["--seed", str(self._seed)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY_LINE):
            process.kill()
            process.wait()
            self._process = None
            raise RuntimeError(f"the emulator child process did not start (exit code {process.returncode}, said {line!r})")
        self.port = int(line.rsplit(" ", 1)[1])
