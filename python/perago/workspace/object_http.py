"""Object bodies over plain keep-alive HTTP/1.1: the hot path of workspace transfers.

Listing, commits and merges go through the generated `lakefs-sdk`; object bodies do not,
because per request urllib3 and the SDK cost about three times the CPU of bare
`http.client` (measured: ~0.9 ms against ~0.3 ms per 256 KiB object), itself mostly header
parsing that `http_wire` does without, and a 1,000-file workspace pays it 1,000 times in
each direction. Downloads are read with `readinto` into one reused buffer (no copies in
Python); uploads go out with `socket.sendfile` straight from the file (W-22), or over TLS
in 1 MiB pieces.

Retries: a connection that cannot be opened is retried with back-off; a kept-alive
connection the server closed while idle is replaced and the request resent once. Both
requests this module sends may be resent safely: a GET reads an immutable commit, and an
upload rewrites the same bytes to the same key of perago's private staging branch.
Nothing is retried once a response has started to arrive.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import urlsplit

from perago.workspace.http_wire import Connection, Response, StaleConnection

CONNECT_ATTEMPTS = 4
CONNECT_BACKOFF_SECONDS = 0.2
_ERROR_BODY_LIMIT = 64 * 1024
BUFFER_BYTES = 1 << 20
# How a kept-alive connection the server closed while idle fails the next request. Over TLS
# a write after the peer's reset is reported as SSLEOFError, not as BrokenPipeError.
_STALE_CONNECTION_ERRORS = (StaleConnection, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)


class ObjectHttpError(Exception):
    """A transport failure (`status` None) or a non-2xx answer with the server's body."""

    def __init__(self, status: int | None, detail: str, body: bytes = b"", reason: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.body = body
        self.reason = reason


class ObjectHttp:
    """A bounded pool of keep-alive connections to one lakeFS endpoint, shared by threads.

    `base_url` is the API root (`http://host:8000/api/v1`); targets passed to `exchange`
    are relative to it. At most `pool_size` idle connections are kept; more may be open
    while more threads transfer at once.
    """

    def __init__(self, base_url: str, *, pool_size: int, connect_timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"lakeFS endpoint {base_url!r} must be an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        default_port = 443 if self._https else 80
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if self._port == default_port else f"{host}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        self._ssl_context = ssl.create_default_context() if self._https else None
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._idle, self._lock)

    def close(self) -> None:
        """Close the idle connections; the pool stays usable."""
        _close_all(self._idle, self._lock)

    @contextmanager
    def exchange(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        body: BinaryIO | None = None,
        body_size: int = 0,
    ) -> Iterator[Response]:
        """Send one request and yield its 2xx response for the caller to read.

        `body` is sent from its current position with `sendfile`, `body_size` bytes. A
        non-2xx answer raises `ObjectHttpError` carrying the status and (bounded) body;
        transport failures raise it with status None. The connection returns to the pool
        only if the caller read the whole response; errors while the caller reads the body
        are the caller's to translate.
        """
        connection, response = self._send(method, target, headers, timeout, body, body_size)
        reusable = False
        try:
            if not 200 <= response.status <= 299:
                try:
                    payload = response.read(_ERROR_BODY_LIMIT)
                except OSError:
                    payload = b""
                reusable = response.complete and not response.will_close
                raise ObjectHttpError(response.status, f"HTTP {response.status}", payload, response.reason)
            yield response
            reusable = response.complete and not response.will_close
        finally:
            if reusable:
                self._release(connection)
            else:
                connection.close()

    def _send(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        timeout: float,
        body: BinaryIO | None,
        body_size: int,
    ) -> tuple[Connection, Response]:
        start = body.tell() if body is not None else 0
        head = dict(headers)
        if body is not None:
            head["Content-Length"] = str(body_size)
        failures = 0
        fresh = False
        while True:
            connection: Connection | None = None
            reused = False
            try:
                connection, reused = self._acquire(fresh, timeout)
                connection.sock.settimeout(timeout)
                connection.send_head(method, self._prefix + target, head)
                if body is not None and body_size:
                    sent = _send_body(connection.sock, body, start, body_size)
                    if sent != body_size:
                        raise OSError(f"request body: sent {sent} of {body_size} bytes (the file shrank)")
                return connection, connection.read_response(method)
            except OSError as error:
                if connection is not None:
                    connection.close()
                stale = reused and isinstance(error, _STALE_CONNECTION_ERRORS)
                refused = connection is None and isinstance(error, (ConnectionRefusedError, socket.gaierror))
                if stale and not fresh:
                    fresh = True  # the server closed idle keep-alive connections: resend once on a new one
                    continue
                if refused and failures + 1 < CONNECT_ATTEMPTS:
                    time.sleep(CONNECT_BACKOFF_SECONDS * (2**failures))
                    failures += 1
                    continue
                raise ObjectHttpError(None, f"{type(error).__name__}: {error}") from None
            except BaseException:
                if connection is not None:
                    connection.close()
                raise

    def _acquire(self, fresh: bool, timeout: float) -> tuple[Connection, bool]:
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        sock = socket.create_connection((self._host, self._port), timeout=min(self._connect_timeout, timeout))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return Connection(sock, self._host_header), False

    def _release(self, connection: Connection) -> None:
        with self._lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(connection)
                return
        connection.close()


def _send_body(sock: socket.socket, body: BinaryIO, start: int, size: int) -> int:
    """Send `size` bytes of `body` from offset `start`; the count actually sent.

    Over TLS, `sendfile` cannot hand the file to the kernel and falls back to 8 KiB reads
    and sends from the file's current position (it seeks only to a non-zero offset, so a
    resend would start where the failed try stopped). Reading 1 MiB pieces at explicit
    offsets halves the CPU (measured, alternating in one process: 13-17 against 27-44 ms
    per 16 MiB upload).
    """
    if not isinstance(sock, ssl.SSLSocket):
        return sock.sendfile(body, start, size)
    fd = body.fileno()
    buffer = thread_buffer()
    sent = 0
    while sent < size:
        count = os.preadv(fd, [buffer[: min(len(buffer), size - sent)]], start + sent)
        if not count:
            break
        sock.sendall(buffer[:count])
        sent += count
    return sent


def _close_all(idle: list[Connection], lock: threading.Lock) -> None:
    with lock:
        connections, idle[:] = list(idle), []
    for connection in connections:
        connection.close()


_buffers = threading.local()


def thread_buffer() -> memoryview:
    """A 1 MiB buffer owned by the calling thread, reused by every transfer it makes (a fresh
    buffer per object would cost page faults on every use)."""
    buffer = getattr(_buffers, "view", None)
    if buffer is None:
        buffer = _buffers.view = memoryview(bytearray(BUFFER_BYTES))
    return buffer


def read_body_into(response: Response, buffer: memoryview) -> Iterator[memoryview]:
    """Yield views of `buffer` holding successive pieces of the body (valid until the next one)."""
    while True:
        count = response.readinto(buffer)
        if not count:
            return
        yield buffer[:count]


def write_all(fd: int, data: memoryview) -> None:
    """os.write until every byte of `data` is written."""
    while data:
        written = os.write(fd, data)
        data = data[written:]
