"""A TLS-terminating relay in front of a plain-HTTP server, for testing clients over https.

The relay decrypts with an `ssl.SSLObject` over memory BIOs instead of an `SSLSocket`: both
directions of a connection use the one TLS object, and OpenSSL objects must not be used
from two threads at once. With memory BIOs no TLS call ever waits on the network, so a
lock held only for the call itself is enough.
Tests can close an idle connection the three ways a server does: with a TLS close_notify,
with a bare TCP FIN, or with a reset.
"""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

_CHUNK = 64 * 1024
_ACCEPT_POLL_SECONDS = 0.05
_T = TypeVar("_T")
CloseStyle = Literal["close_notify", "fin", "reset"]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid one day: (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsProxy:
    """Accepts TLS on a loopback port and relays each connection to `upstream` in plain TCP."""

    def __init__(self, cert: Path, key: Path, upstream: tuple[str, int]) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_ACCEPT_POLL_SECONDS)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._relays: list[_Relay] = []
        self._accepter = threading.Thread(target=self._accept_loop, name="tls-proxy-accept", daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far (a client reusing keep-alive connections opens few)."""
        with self._lock:
            return len(self._relays)

    def drop_connections(self, style: CloseStyle) -> None:
        """Close every open connection from the server side, as a server ending idle ones does."""
        with self._lock:
            relays = list(self._relays)
        for relay in relays:
            relay.drop(style)
        for relay in relays:
            relay.join()

    def close(self) -> None:
        self._stopping.set()
        self._accepter.join()
        self._listener.close()
        self.drop_connections("fin")

    def __enter__(self) -> TlsProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            relay = _Relay(client, self._context, self._upstream)
            with self._lock:
                self._relays.append(relay)
            relay.start()


class _Relay:
    """One client connection: the inbound thread does the handshake, relays requests and
    closes everything at the end; the outbound thread relays answers."""

    def __init__(self, client: socket.socket, context: ssl.SSLContext, upstream: tuple[str, int]) -> None:
        self._client = client
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._upstream_address = upstream
        self._upstream: socket.socket | None = None
        self._close_style: CloseStyle | None = None  # None: the client closed first
        self._tls_lock = threading.Lock()
        self._send_lock = threading.Lock()  # taken under _tls_lock: records reach the wire in order
        self._inbound = threading.Thread(target=self._relay_inbound, name="tls-proxy-in", daemon=True)
        self._outbound = threading.Thread(target=self._relay_outbound, name="tls-proxy-out", daemon=True)

    def start(self) -> None:
        self._inbound.start()

    def join(self) -> None:
        self._inbound.join()

    def drop(self, style: CloseStyle) -> None:
        """End the connection from the server side the way `style` says."""
        with self._tls_lock:
            if self._close_style is None:
                self._close_style = style
        _shutdown(self._client, socket.SHUT_RD)  # wakes the inbound thread, sends nothing

    def _tls_call(self, operation: Callable[[], _T]) -> _T:
        """Run one TLS operation, then send the records it produced (also when it raised, as
        a handshake step wanting more input does) before any later ones."""
        records = b""
        try:
            with self._tls_lock:
                try:
                    return operation()
                finally:
                    records = self._outgoing.read()
                    if records:
                        self._send_lock.acquire()
        finally:
            if records:
                try:
                    self._client.sendall(records)
                finally:
                    self._send_lock.release()

    def _shutdown_tls(self) -> None:
        try:
            self._tls.unwrap()  # queues our close_notify; an idle client sends none back
        except ssl.SSLWantReadError:
            pass

    def _decrypt(self, data: bytes) -> bytes:
        """The plain bytes of what the client sent so far."""
        self._incoming.write(data)
        plain = bytearray()
        while True:
            try:
                piece = self._tls.read(_CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return bytes(plain)
            if not piece:
                return bytes(plain)
            plain += piece

    def _handshake(self) -> bool:
        while True:
            try:
                self._tls_call(self._tls.do_handshake)
                return True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False  # e.g. the client does not trust our certificate
            data = self._client.recv(_CHUNK)
            if not data:
                return False
            self._incoming.write(data)

    def _relay_inbound(self) -> None:
        try:
            if not self._handshake():
                return
            self._upstream = socket.create_connection(self._upstream_address)
            self._outbound.start()
            data = b""  # the first request may have come with the end of the handshake
            while True:
                plain = self._tls_call(partial(self._decrypt, data))
                if plain:
                    self._upstream.sendall(plain)
                data = self._client.recv(_CHUNK)
                if not data:
                    return
        except OSError:
            return  # ssl.SSLError included: a broken client, nothing to relay any more
        finally:
            self._finish()

    def _relay_outbound(self) -> None:
        assert self._upstream is not None
        try:
            while True:
                data = self._upstream.recv(_CHUNK)
                if not data:
                    break
                self._tls_call(partial(self._tls.write, data))
        except OSError:
            pass
        self.drop("close_notify")  # the server ended the connection: so does the relay

    def _finish(self) -> None:
        self.drop("fin")  # no-op for a dropped connection; else the client left first
        if self._upstream is not None:
            _shutdown(self._upstream, socket.SHUT_RDWR)
            if self._outbound.is_alive():
                self._outbound.join()
            self._upstream.close()
        try:
            if self._close_style == "close_notify":
                self._tls_call(self._shutdown_tls)
            if self._close_style == "reset":
                self._client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                _shutdown(self._client, socket.SHUT_RDWR)
        except OSError:
            pass  # the client is already gone
        self._client.close()


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass  # already closed or never connected
