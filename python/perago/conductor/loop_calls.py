"""Conductor exchanges driven by the broker's loop thread, many at once, without threads.

The broker used to hand every result update to a reporter thread and take the answer
back through a queue: two thread hand-offs, GIL transfers and wake-ups per task, which
cost more CPU than the update itself. Here the loop thread sends each request on a
non-blocking keep-alive connection whose fd the Rust dispatcher watches
(`Dispatcher.watch_fd`); the answer arrives as an `FdReadable` event in the same wait
as executor completions, and the exchange (`perago.conductor.client`: update with the
v2 fallback, delivery with retries, task reload) continues from where it yielded.

- One request per connection at a time; idle connections are kept for reuse. A reused
  connection the server had closed (closed or reset before any answer byte) gets the
  request once more on a fresh connection, as the blocking transport does.
- Every request has the client's request timeout; an expired one closes its connection
  and the exchange sees a `ConductorTransportError`, like any transport failure.
- `Pause` steps become timers; `next_deadline()` tells the loop how long it may wait.
- Connecting (and, rarely, finishing a send the socket buffer could not take at once)
  blocks for at most the request timeout; Conductor connections are long-lived.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from perago.conductor.client import ConductorClient, Exchange, Pause, Request
from perago.conductor.errors import ConductorError, ConductorTransportError
from perago.conductor.transport import HttpResponse, ResponseParser, open_connection

Done = Callable[[Any, BaseException | None], None]
"""Called once with the exchange's result, or `None` and the exception that ended it."""

_RECV_BYTES = 64 * 1024
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Call:
    """One exchange; its current request has two separate second chances, as in the
    blocking transport: `resent` after a stale connection, `renewed` after an expired token."""

    __slots__ = ("exchange", "done", "request", "encoded", "token", "resent", "renewed")

    def __init__(self, exchange: Exchange[Any], done: Done) -> None:
        self.exchange = exchange
        self.done = done
        self.request: Request | None = None
        self.encoded = b""
        self.token: str | None = None
        self.resent = False
        self.renewed = False


class _Connection:
    __slots__ = ("sock", "fd", "parser", "call", "deadline", "reused")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.parser = ResponseParser()
        self.call: _Call | None = None
        self.deadline = 0.0
        self.reused = False


class LoopCalls:
    """Runs exchanges of one `ConductorClient` from a single thread (the broker's loop)."""

    def __init__(
        self,
        client: ConductorClient,
        *,
        watch: Callable[[int], None],
        unwatch: Callable[[int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._watch = watch
        self._unwatch = unwatch
        self._clock = clock
        self._connections: dict[int, _Connection] = {}
        self._idle: list[_Connection] = []
        self._timers: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._calls = 0

    def __len__(self) -> int:
        """Exchanges not finished yet (sending, waiting for an answer, or pausing)."""
        return self._calls

    def start(self, exchange: Exchange[Any], done: Done) -> None:
        self._calls += 1
        self._advance(_Call(exchange, done), None, None)

    def next_deadline(self) -> float | None:
        """When `run_due` has something to do (a pause ends or a request times out)."""
        deadlines = [c.deadline for c in self._connections.values() if c.call is not None]
        if self._timers:
            deadlines.append(self._timers[0][0])
        return min(deadlines, default=None)

    def run_due(self) -> None:
        now = self._clock()
        for connection in [c for c in self._connections.values() if c.call is not None and c.deadline <= now]:
            call = connection.call
            assert call is not None and call.request is not None
            self._close(connection)
            timeout = self.client.request_timeout_seconds
            self._advance(call, None, _transport_error(call.request, f"no answer within {timeout:g}s"))
        while self._timers and self._timers[0][0] <= now:
            _, _, call = heapq.heappop(self._timers)
            self._advance(call, None, None)

    def on_readable(self, fd: int) -> None:
        connection = self._connections.get(fd)
        if connection is None:
            return
        call = connection.call
        while True:
            try:
                chunk = connection.sock.recv(_RECV_BYTES)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                self._lost(connection, exc)
                return
            try:
                if not chunk:
                    if call is None or (connection.reused and not connection.parser.received):
                        self._lost(connection, None)
                        return
                    response = connection.parser.feed_eof()
                else:
                    response = connection.parser.feed(chunk)
            except ConnectionError as exc:
                self._lost(connection, exc)
                return
            if call is None:  # bytes nobody asked for: the connection is unusable
                self._close(connection)
                return
            if response is not None:
                self._answered(connection, call, response)
                return

    def close(self) -> None:
        """Close the connections and end every unfinished exchange, each `done` called once:
        pauses are cut short and requests fail with a transport error (a delivery whose abort
        flag the caller set then logs its result as undeliverable)."""
        unfinished = [(c.call, False) for c in self._connections.values() if c.call is not None]
        unfinished += [(call, True) for _, _, call in self._timers]
        self._timers.clear()
        for connection in list(self._connections.values()):
            self._close(connection)
        for call, paused in unfinished:
            self._abandon(call, paused)

    # -- steps -----------------------------------------------------------------------------

    def _advance(self, call: _Call, answer: HttpResponse | None, failure: BaseException | None) -> None:
        step = self._step(call, answer, failure)
        if step is None:
            return
        if isinstance(step, Pause):
            heapq.heappush(self._timers, (self._clock() + step.seconds, next(self._order), call))
            return
        call.request = step
        call.resent = call.renewed = False
        try:  # may fetch a token first (blocking, rare)
            call.encoded, call.token = self.client.encode(step)
        except ConductorError as exc:
            self._advance(call, None, exc)
            return
        self._send(call)

    def _send(self, call: _Call, *, fresh: bool = False) -> None:
        """Send on an idle connection, or a new one when `fresh` (after a stale connection:
        the other idle ones may be stale too, the server having closed them all at once)."""
        assert call.request is not None
        connection = self._idle.pop() if self._idle and not fresh else None
        try:
            if connection is None:
                connection = self._open()
            _send_all(connection.sock, call.encoded, self.client.request_timeout_seconds)
        except OSError as exc:
            if connection is not None and connection.reused and not call.resent:
                call.resent = True
                self._close(connection)
                self._send(call, fresh=True)
                return
            if connection is not None:
                self._close(connection)
            self._advance(call, None, _transport_error(call.request, _describe(exc)))
            return
        connection.call = call
        connection.deadline = self._clock() + self.client.request_timeout_seconds

    def _answered(self, connection: _Connection, call: _Call, response: HttpResponse) -> None:
        connection.call = None
        if connection.parser.keep_alive and not connection.parser.leftover:
            connection.reused = True
            connection.parser = ResponseParser()
            self._idle.append(connection)
        else:
            self._close(connection)
        assert call.request is not None
        try:  # a renewal fetches the new token blocking (rare)
            renewed = not call.renewed and self.client.renewed_auth(response, call.token)
            if renewed:
                call.encoded, call.token = self.client.encode(call.request)
        except ConductorError as exc:
            self._advance(call, None, exc)
            return
        if renewed:
            call.renewed, call.resent = True, False
            self._send(call)
            return
        self._advance(call, response, None)

    def _lost(self, connection: _Connection, error: BaseException | None) -> None:
        """The connection failed or closed; its request (if any) is resent once when the
        server merely dropped a reused connection, and failed otherwise."""
        call = connection.call
        stale = connection.reused and not connection.parser.received
        self._close(connection)
        if call is None:
            return
        assert call.request is not None
        if stale and not call.resent:
            call.resent = True
            self._send(call, fresh=True)
            return
        reason = "connection closed by the server before answering" if error is None else _describe(error)
        self._advance(call, None, _transport_error(call.request, reason))

    def _step(self, call: _Call, answer: HttpResponse | None, failure: BaseException | None) -> Request | Pause | None:
        """The exchange's next step, or `None` once it finished (its `done` has been called)."""
        try:
            return call.exchange.send(answer) if failure is None else call.exchange.throw(failure)
        except StopIteration as finished:
            self._finish(call, finished.value, None)
        except Exception as exc:  # noqa: BLE001 - the exchange's own error is its outcome
            self._finish(call, None, exc)
        return None

    def _abandon(self, call: _Call, paused: bool) -> None:
        """End `call` without I/O: a pause ends at once (as `abort` cuts a blocking pause
        short) and every request fails, so an exchange told to abort gives up at its next
        failure as it always does (a delivery logs its result as undeliverable)."""
        stopped = ConductorTransportError("the broker stopped before this call finished")
        for _ in range(3):
            step = self._step(call, None, None if paused else stopped)
            if step is None:
                return
            paused = isinstance(step, Pause)
            if not paused:
                call.request = step
        call.exchange.close()
        logger.error("a Conductor call was abandoned when the broker stopped", request=str(call.request))
        self._finish(call, None, stopped)

    def _finish(self, call: _Call, value: Any, error: BaseException | None) -> None:
        self._calls -= 1
        call.done(value, error)

    # -- connections -------------------------------------------------------------------------

    def _open(self) -> _Connection:
        connection = _Connection(open_connection(self.client.address, self.client.request_timeout_seconds))
        self._connections[connection.fd] = connection
        self._watch(connection.fd)
        return connection

    def _close(self, connection: _Connection) -> None:
        if self._connections.pop(connection.fd, None) is None:
            return
        if connection in self._idle:
            self._idle.remove(connection)
        self._unwatch(connection.fd)
        try:
            connection.sock.close()
        except OSError:
            pass


def _send_all(sock: socket.socket, data: bytes, timeout: float) -> None:
    """Send `data`; what the socket buffer cannot take at once is sent blocking (rare)."""
    try:
        sent = sock.send(data)
    except _WOULD_BLOCK:
        sent = 0
    if sent < len(data):
        sock.settimeout(timeout)
        try:
            sock.sendall(data[sent:])
        finally:
            sock.setblocking(False)


def _transport_error(request: Request, reason: str) -> ConductorTransportError:
    return ConductorTransportError(f"{request.method} {request.path}: {reason}")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
