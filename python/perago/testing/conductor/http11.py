"""A small HTTP/1.1 server protocol on asyncio: keep-alive, pipelining, chunked bodies.

Why this stack (stdlib only, hand-written on `asyncio.Protocol`, uvloop if importable):
the emulator must serve well over 10,000 task round trips per second on one core so that
benchmarks measure the worker, not the emulator. A callback protocol creates no task or
stream object per request; requests answered synchronously (nearly all of them) are
written back in one `transport.write` per batch of pipelined requests. Only long polls
and injected latency become coroutines, and a connection parks further pipelined
requests until they finish, so answers keep request order. Measured with
`benches/emulator_ceiling.py` on this 2-core machine (shared with other jobs; load 5-14),
as task round trips per emulator CPU-second: batch poll + pipelined `POST /api/tasks`
9,400-19,000 (17,200/s wall clock at load 5); one-at-a-time `update-v2` (each answer
carrying the next task) 4,500-8,200. The in-process application work is ≈ 50-70 µs CPU
per task; an unpipelined request adds the event loop's per-request cost (a null handler
on this protocol serves only 14,000-25,000 requests per CPU-second with the stdlib loop,
≈ 34,000 with uvloop), which is why `update-v2` traffic costs about twice as much.
uvloop made no measurable difference to the whole emulator here, so it is used when
importable but is not a dependency. Python clears the 5,000/s floor; the 12,000/s aim
only on the batch path. If worker runtimes come near the `update-v2` ceiling, a native
HTTP front end is the next step, not more Python tuning.

The application is any callable `handle(request)` that returns response bytes, a `Cut`
(abort the connection, optionally after part of an answer), or an awaitable of either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class Cut:
    """Abort the connection after writing `prefix` (fault injection: a lost or torn answer)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: bytes = b"") -> None:
        self.prefix = prefix


DROP = Cut()
"""Abort the connection without answering."""

Reply = bytes | Cut
Handler = Callable[["Request"], Reply | Awaitable[Reply]]

_REASONS = {status.value: status.phrase for status in HTTPStatus}


class Request:
    """One parsed request. Header values are looked up on demand in the raw head."""

    __slots__ = ("method", "path", "query", "body", "_head", "_lower")

    def __init__(self, method: str, path: str, query: str, head: str, body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self._head = head
        self._lower = head.lower()

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or None."""
        return _field(self._lower, self._head, f"\r\n{name.lower()}:")


def _field(lower: str, head: str, marker: str) -> str | None:
    start = lower.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = head.find("\r", start)
    return head[start : end if end >= 0 else len(head)].strip()


class BadHttp(Exception):
    """The bytes on the wire are not HTTP/1.1 we can read."""


def response(status: int, body: bytes = b"", content_type: str | None = None) -> bytes:
    """Serialise one response (keep-alive). 204 carries no body and no content type."""
    head = f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
    if status == 204:
        return (head + "\r\n").encode()
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, handle: Handler, registry: set[HttpProtocol] | None = None) -> None:
        self._handle = handle
        self._registry = registry
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._closing = False
        self._continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._registry is not None:
            self._registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._transport = None
        if self._registry is not None:
            self._registry.discard(self)

    def close(self) -> None:
        """Close the connection (server shutdown)."""
        self._close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._serve()

    def _serve(self) -> None:
        out: list[bytes] = []
        while not self._closing:
            try:
                parsed = self._next_request()
            except BadHttp as error:
                out.append(_close_header(response(400, str(error).encode(), "text/plain")))
                self._flush(out)
                self._close()
                return
            if parsed is None:
                break
            request, keep_alive = parsed
            reply = self._handle(request)
            if isinstance(reply, (bytes, Cut)):
                if not self._emit(out, reply, keep_alive):
                    return
                continue
            self._flush(out)
            self._busy = True
            asyncio.ensure_future(self._finish(reply, keep_alive))
            return
        self._flush(out)

    async def _finish(self, pending: Awaitable[Reply], keep_alive: bool) -> None:
        reply = await pending
        self._busy = False
        out: list[bytes] = []
        if self._emit(out, reply, keep_alive):
            self._flush(out)
            if self._buffer:
                self._serve()

    def _emit(self, out: list[bytes], reply: Reply, keep_alive: bool) -> bool:
        """Queue one answer; False when the connection is being closed."""
        if isinstance(reply, Cut):
            out.append(reply.prefix)
            self._flush(out)
            self._close(abort=True)
            return False
        if keep_alive:
            out.append(reply)
            return True
        out.append(_close_header(reply))
        self._flush(out)
        self._close()
        return False

    def _flush(self, out: list[bytes]) -> None:
        if out and self._transport is not None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _close(self, abort: bool = False) -> None:
        self._closing = True
        transport = self._transport
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()

    def _next_request(self) -> tuple[Request, bool] | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise BadHttp("request head too large")
            return None
        head = buffer[:end].decode("latin-1")
        line_end = head.find("\r\n")
        request_line = head if line_end < 0 else head[:line_end]
        try:
            method, target, version = request_line.split(" ")
        except ValueError:
            raise BadHttp(f"malformed request line {request_line[:100]!r}") from None
        if not version.startswith("HTTP/1."):
            raise BadHttp(f"unsupported protocol {version[:20]!r}")
        if line_end >= 0:
            for line in head[line_end + 2 :].split("\r\n"):
                if ":" not in line:
                    raise BadHttp(f"malformed header line {line[:100]!r}")
        lower = head.lower()
        body_start = end + 4
        if (_field(lower, head, "\r\ntransfer-encoding:") or "").lower() == "chunked":
            decoded = _dechunk(buffer, body_start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            length_text = _field(lower, head, "\r\ncontent-length:") or "0"
            try:
                length = int(length_text)
            except ValueError:
                raise BadHttp(f"bad Content-Length {length_text[:30]!r}") from None
            if length < 0 or length > MAX_BODY_BYTES:
                raise BadHttp(f"Content-Length {length} out of range")
            if len(buffer) < body_start + length:
                expect = _field(lower, head, "\r\nexpect:") or ""
                if not self._continued and expect.lower() == "100-continue" and self._transport is not None:
                    self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self._continued = True
                return None
            body = bytes(buffer[body_start : body_start + length])
            consumed = body_start + length
        del buffer[:consumed]
        self._continued = False
        connection = (_field(lower, head, "\r\nconnection:") or "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path, _, query = target.partition("?")
        return Request(method, path, query, head, body), keep_alive


def _close_header(reply: bytes) -> bytes:
    return reply.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at `start`; None when more bytes are needed."""
    parts: list[bytes] = []
    position = start
    total = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = bytes(buffer[position:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadHttp(f"bad chunk size {size_text[:20]!r}") from None
        total += size
        if total > MAX_BODY_BYTES:
            raise BadHttp("chunked body too large")
        data_start = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end == line_end:
                return b"".join(parts), line_end + 4
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 4
        if len(buffer) < data_start + size + 2:
            return None
        parts.append(bytes(buffer[data_start : data_start + size]))
        position = data_start + size + 2
