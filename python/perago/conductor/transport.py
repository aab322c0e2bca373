"""Keep-alive HTTP/1.1 to one Conductor server: one `http.client` connection per thread.

Why stdlib `http.client` and not httpx/requests/urllib3: a worker sends small JSON bodies
to one host over loopback or a LAN, so the client's own CPU per request is what limits
throughput. Measured on this machine (benches/conductor_client_cost.py) a keep-alive
`http.client` round trip costs about a third of httpx's CPU and less than urllib3's
pool, and it has no dependencies. One connection per thread needs no pool lock and keeps
each thread's requests ordered; a thread that is idle for long simply reconnects.

What the caller may rely on: `request` returns the whole answer (status, headers, body)
or raises `ConductorTransportError`; a request that fails on a reused connection the
server had already closed (the classic keep-alive race) is sent once more on a fresh
connection, everything else is reported, not replayed.
"""

from __future__ import annotations

import base64
import http.client
import socket
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from perago.conductor.errors import ConductorTransportError

_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


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


class _NoDelayHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelayHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _ThreadConnection:
    __slots__ = ("conn", "used")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.used = False


class HttpTransport:
    """Sends requests to one server, reusing a keep-alive connection per calling thread."""

    def __init__(self, address: ServerAddress, *, timeout_seconds: float = 30.0) -> None:
        self.address = address
        self.timeout_seconds = timeout_seconds
        self._local = threading.local()
        self._all: list[_ThreadConnection] = []
        self._all_lock = threading.Lock()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        """Send `method base_path+path`; `path` includes any query string."""
        url = self.address.base_path + path
        all_headers = {"Content-Type": "application/json"}
        if self.address.basic_auth:
            all_headers["Authorization"] = self.address.basic_auth
        if headers:
            all_headers.update(headers)
        slot = self._connection()
        try:
            return self._exchange(slot, method, url, body, all_headers)
        except _STALE_CONNECTION_ERRORS as exc:
            reused = slot.used
            self._reset(slot)
            if not reused:
                raise ConductorTransportError(f"{method} {path}: {_describe(exc)}") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._reset(slot)
            raise ConductorTransportError(f"{method} {path}: {_describe(exc)}") from exc
        try:
            return self._exchange(slot, method, url, body, all_headers)
        except (OSError, http.client.HTTPException) as exc:
            self._reset(slot)
            raise ConductorTransportError(f"{method} {path}: {_describe(exc)}") from exc

    def close(self) -> None:
        """Close every connection this transport opened (from any thread)."""
        with self._all_lock:
            slots, self._all = self._all, []
        for slot in slots:
            slot.conn.close()

    def _exchange(
        self, slot: _ThreadConnection, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> HttpResponse:
        conn = slot.conn
        conn.request(method, url, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        slot.used = True
        if response.will_close:
            self._reset(slot)
        return HttpResponse(response.status, data, response.getheader("Content-Type", ""))

    def _connection(self) -> _ThreadConnection:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            conn_type = _NoDelayHTTPSConnection if self.address.scheme == "https" else _NoDelayHTTPConnection
            slot = _ThreadConnection(conn_type(self.address.host, self.address.port, timeout=self.timeout_seconds))
            self._local.slot = slot
            with self._all_lock:
                self._all.append(slot)
        return slot

    @staticmethod
    def _reset(slot: _ThreadConnection) -> None:
        slot.conn.close()
        slot.used = False


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
