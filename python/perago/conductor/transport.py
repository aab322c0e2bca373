"""Keep-alive HTTP/1.1 to one Conductor server: a small client over one socket per thread.

Why not httpx, requests, urllib3 or even `http.client`: a worker sends small JSON bodies
to one host, so the client's own CPU per request is what limits throughput and what a
busy worker burns. Measured on the build machine with one loopback server
(`benches/conductor_client_cost.py`, CPU per keep-alive POST round trip, one run):
this client 74 µs (nearly all of it the two syscalls), `http.client` 218 µs (its header
parsing goes through `email.parser`), urllib3 571 µs, httpx 819 µs, requests 1,346 µs. One connection per thread needs no
pool lock and keeps each thread's requests in order.

Scope, deliberately small and complete for what Conductor answers: HTTP/1.1 (and 1.0)
responses with `Content-Length`, `Transfer-Encoding: chunked`, or read-to-close bodies;
no body for 1xx/204/304; interim 1xx answers skipped; `Connection: close` honoured;
http and https. What the caller may rely on: `request` returns the whole answer or
raises `ConductorTransportError`; a request that fails on a reused connection before
any answer byte arrived (the server closed an idle keep-alive connection) is sent once
more on a fresh connection, everything else is reported, not replayed.
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from perago.conductor.errors import ConductorTransportError
from perago.http1 import ProtocolError, ResponseHead, parse_head

MAX_HEAD_BYTES = 64 * 1024
# Below glibc's 128 KiB mmap threshold: `recv(n)` allocates n bytes and shrinks them, and
# a 256 KiB request cost an mmap/munmap pair and page faults per call (~20 µs of CPU here).
_RECV_BYTES = 64 * 1024
_HEAD_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """`CONDUCTOR_SERVER_URL` split into what a connection needs; the base path keeps `/api`."""

    scheme: str
    host: str
    port: int
    base_path: str
    basic_auth: str | None

    @classmethod
    def parse(cls, server_url: str) -> ServerAddress:
        parts = urlsplit(server_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"CONDUCTOR_SERVER_URL must be an http(s) URL, got {server_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        basic_auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            basic_auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), basic_auth)

    def display(self) -> str:
        """The URL without credentials, for logs."""
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"


class _StaleConnection(Exception):
    """The reused connection was closed by the server before any answer byte arrived."""


class ResponseParser:
    """One HTTP/1.1 response from the bytes of a connection, fed as they arrive (sans I/O).

    `feed` returns the whole response once it is there (interim 1xx answers skipped) and
    `None` while more bytes are needed; `feed_eof` ends a read-to-close body. Both raise
    `ConnectionError` for a malformed or truncated answer. After a response,
    `keep_alive` says whether the connection may carry another request and
    `leftover` whether bytes beyond the response arrived (the connection is then unusable).
    The head is read by `perago.http1`, as the workspace's object client reads it.
    """

    __slots__ = ("buffer", "received", "keep_alive", "_head")

    def __init__(self) -> None:
        self.buffer = b""
        self.received = False
        self.keep_alive = False
        self._head: ResponseHead | None = None

    @property
    def leftover(self) -> bool:
        return bool(self.buffer)

    def feed(self, data: bytes) -> HttpResponse | None:
        if data:
            self.received = True
            self.buffer += data
        while self._head is None:
            if not self._parse_head():
                return None
            if 100 <= self._head.status < 200:  # type: ignore[union-attr]
                self._head = None
        body = self._parse_body(self._head)
        if body is None:
            return None
        return self._finish(body)

    def feed_eof(self) -> HttpResponse:
        """The peer closed the connection: the response ends here, or it was cut short."""
        if self._head is None:
            raise ProtocolError("connection closed before the HTTP response head was complete")
        if self._head.framing() != "close":
            raise ProtocolError("connection closed in the middle of the HTTP response body")
        body, self.buffer = self.buffer, b""
        self.keep_alive = False
        return self._finish(body)

    def _finish(self, body: bytes) -> HttpResponse:
        head = self._head
        assert head is not None
        self._head = None
        return HttpResponse(head.status, body, head.headers.get("content-type", ""))

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("HTTP response head is larger than 64 KiB")
            return False
        self._head = parse_head(self.buffer[:end])
        self.buffer = self.buffer[end + 4 :]
        self.keep_alive = self._head.keep_alive
        return True

    def _parse_body(self, head: ResponseHead) -> bytes | None:
        framing = head.framing()
        if framing == "none":
            return b""
        if framing == "length":
            size = head.content_length
            if len(self.buffer) < size:
                return None
            body, self.buffer = self.buffer[:size], self.buffer[size:]
            return body
        if framing == "chunked":
            return self._parse_chunked()
        return None  # read to close: `feed_eof` ends it

    def _parse_chunked(self) -> bytes | None:
        """The whole chunked body once all of it (and the trailer) is buffered."""
        buffer, index, parts = self.buffer, 0, []
        while True:
            end = buffer.find(b"\r\n", index)
            if end < 0:
                if len(buffer) - index > MAX_HEAD_BYTES:
                    raise ProtocolError("malformed chunked HTTP response body")
                return None
            size_text = buffer[index:end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"malformed chunk size {size_text[:40]!r}") from None
            index = end + 2
            if size == 0:
                while True:  # trailer lines up to the empty one
                    end = buffer.find(b"\r\n", index)
                    if end < 0:
                        return None
                    line, index = buffer[index:end], end + 2
                    if not line:
                        self.buffer = buffer[index:]
                        return b"".join(parts)
            if len(buffer) < index + size + 2:
                return None
            if buffer[index + size : index + size + 2] != b"\r\n":
                raise ProtocolError("malformed chunked HTTP response body")
            parts.append(buffer[index : index + size])
            index += size + 2


class _Connection:
    """One socket and its unread bytes; used by exactly one thread."""

    __slots__ = ("address", "timeout", "sock", "used")

    def __init__(self, address: ServerAddress, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.used = False

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.used = False

    def exchange(self, request: bytes) -> HttpResponse:
        if self.sock is None:
            self.sock = open_connection(self.address, self.timeout)
        reused = self.used
        try:
            self.sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError) as exc:
            if reused:
                raise _StaleConnection from exc
            raise
        parser = ResponseParser()
        response = None
        while response is None:
            try:
                chunk = self.sock.recv(_RECV_BYTES)
            except ConnectionResetError:
                if reused and not parser.received:
                    raise _StaleConnection from None
                raise
            if chunk:
                response = parser.feed(chunk)
            elif reused and not parser.received:
                raise _StaleConnection
            else:
                response = parser.feed_eof()
        self.used = True
        if not parser.keep_alive or parser.leftover:
            self.close()
        return response


def open_connection(address: ServerAddress, timeout: float) -> socket.socket:
    """A connected socket (TLS for https) with `timeout` on every operation and no Nagle delay."""
    sock = socket.create_connection((address.host, address.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if address.scheme == "https":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=address.host)
    return sock


class HttpTransport:
    """Sends requests to one server, reusing a keep-alive connection per calling thread."""

    def __init__(self, address: ServerAddress, *, timeout_seconds: float = 30.0) -> None:
        self.address = address
        self.timeout_seconds = timeout_seconds
        self._host_line = f"Host: {address.host}:{address.port}\r\n"
        if address.basic_auth:
            self._host_line += f"Authorization: {address.basic_auth}\r\n"
        self._local = threading.local()
        self._all: list[_Connection] = []
        self._all_lock = threading.Lock()
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...], bool], bytes] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        """Send `method base_path+path` (`path` includes any query string)."""
        request = self.encode(method, path, body, headers)
        connection = self._connection()
        try:
            try:
                return connection.exchange(request)
            except _StaleConnection:
                connection.close()
                return connection.exchange(request)
        except (OSError, ConnectionError, _StaleConnection, ValueError) as exc:
            connection.close()
            cause = exc.__cause__ if isinstance(exc, _StaleConnection) and exc.__cause__ else exc
            raise ConductorTransportError(f"{method} {path}: {_describe(cause)}") from exc

    def encode(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> bytes:
        """The whole request as bytes, for this transport's connections or a caller's own."""
        with_length = body is not None or method in ("POST", "PUT")
        request = self._head(method, path, headers, with_length)
        if with_length:
            request += b"%d\r\n\r\n" % (len(body) if body else 0)
        if body:
            request += body
        return request

    def head_with_length(self, method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
        """A request head ending in `Content-Length: `, for a sender that appends the length
        and body itself (the dispatcher's result relay)."""
        return self._head(method, path, headers, True)

    def _head(self, method: str, path: str, headers: dict[str, str] | None, with_length: bool) -> bytes:
        """The request head up to the blank line, or up to `Content-Length: ` when a length
        follows; cached, since a worker sends the same few heads over and over."""
        key = (method, path, tuple(headers.items()) if headers else (), with_length)
        head = self._heads.get(key)
        if head is None:
            lines = [f"{method} {self.address.base_path}{path} HTTP/1.1\r\n", self._host_line]
            lines.append("Content-Type: application/json\r\n")
            lines.extend(f"{name}: {value}\r\n" for name, value in key[2])
            lines.append("Content-Length: " if with_length else "\r\n")
            head = "".join(lines).encode("latin-1")
            if len(self._heads) >= _HEAD_CACHE_SIZE:
                self._heads.clear()
            self._heads[key] = head
        return head

    def close(self) -> None:
        """Close every connection this transport opened (from any thread)."""
        with self._all_lock:
            connections = list(self._all)
        for connection in connections:
            connection.close()

    def _connection(self) -> _Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = _Connection(self.address, self.timeout_seconds)
            self._local.connection = connection
            with self._all_lock:
                self._all.append(connection)
        return connection


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _StaleConnection):
        return "connection closed by the server before answering"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
