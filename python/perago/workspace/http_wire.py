"""HTTP/1.1 message framing on one socket: what `object_http` sends and reads.

Written for the object hot path instead of using `http.client`, whose per-response header
parse goes through the `email` package and a new socket file object (about 40% of the
client's CPU per 256 KiB object in the workspace bench). Handles what lakeFS and proxies in
front of it send: Content-Length and chunked bodies, bodies ending at close, `Connection:
close`, interim 1xx answers, HEAD/204/304 without a body. Header values are Latin-1, as in
`http.client`. Heads are read by `perago.http1`, as the Conductor client reads them; the
bodies here are streamed (`readinto`), where the Conductor client takes them whole, or, for
a Content-Length body on a plain socket, received straight into a file by `perago._core`
(`receive_into_file`), which hashes it on the way with the GIL released.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from perago._core import receive_body
from perago.http1 import MAX_HEADERS, ProtocolError, ResponseHead, parse_head

MAX_LINE_BYTES = 65536
_READ_BUFFER_BYTES = 64 * 1024


class StaleConnection(ProtocolError):
    """The peer closed the connection before answering (typical of an idle keep-alive)."""


class Connection:
    """One socket plus its read buffer, reused for successive requests."""

    def __init__(self, sock: socket.socket, host_header: str) -> None:
        self.sock = sock
        self.host_header = host_header
        self.reader = sock.makefile("rb", buffering=_READ_BUFFER_BYTES)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def send_head(self, method: str, target: str, headers: Mapping[str, str]) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def read_response(self, method: str) -> Response:
        while True:
            head = parse_head(self._read_head_block())
            if 100 <= head.status < 200:
                continue  # interim answer (100 Continue, 103 Early Hints): the real one follows
            return Response(self, head, method)

    def _read_head_block(self) -> bytes:
        """The status line and header lines, up to (not including) the blank line."""
        status_line = self.reader.readline(MAX_LINE_BYTES + 1)
        if not status_line:
            raise StaleConnection("the server closed the connection without answering")
        lines = [status_line.rstrip(b"\r\n")]
        for _ in range(MAX_HEADERS + 1):
            line = self.reader.readline(MAX_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                return b"\r\n".join(lines)
            if not line:
                raise ProtocolError("connection closed inside the response headers")
            if len(line) > MAX_LINE_BYTES:
                raise ProtocolError("response header line too long")
            lines.append(line.rstrip(b"\r\n"))
        raise ProtocolError(f"more than {MAX_HEADERS} response headers")


class Response:
    """A response whose body is read with `readinto` or `read`; `complete` once all of it was."""

    def __init__(self, connection: Connection, head: ResponseHead, method: str) -> None:
        self.status = head.status
        self.reason = head.reason
        self.headers = head.headers
        self._reader = connection.reader
        self._sock = connection.sock
        self.will_close = not head.keep_alive
        framing = head.framing(method)
        self._chunked = framing == "chunked"
        self._chunk_left = 0
        self._remaining: int | None = None
        self.complete = framing == "none"
        if framing == "length":
            self._remaining = head.content_length
            self.complete = self._remaining == 0
        elif framing == "close":
            self.will_close = True  # the body ends when the server closes

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def can_receive_into_file(self) -> bool:
        """Whether `receive_into_file` can take the body: its length is known and the socket
        is a plain one (not TLS) whose bytes Rust can read itself."""
        return self._remaining is not None and type(self._sock) is socket.socket

    def receive_into_file(self, fd: int, *, md5: bool) -> tuple[int, str, str | None]:
        """Write the rest of the body to the file `fd` with the GIL released, hashing it;
        (bytes written, content digest, MD5 hex or None unless `md5`).

        Raises like `readinto` does: `ProtocolError` when the server closes early,
        `TimeoutError` when a read waits longer than the socket's timeout.
        """
        if not self.can_receive_into_file:
            raise ValueError("receive_into_file needs a Content-Length body on a plain socket")
        count = self._remaining or 0
        # What the reader buffered past the head, so Rust finds the rest on the socket. With
        # nothing buffered, read1 makes one read of the socket instead, bounded here.
        prefix = self._reader.read1(min(count, _READ_BUFFER_BYTES)) if count else b""
        digest, content_md5 = receive_body(
            self._sock.fileno(), fd, prefix, count, timeout=self._sock.gettimeout(), md5=md5
        )
        self._remaining = 0
        self.complete = True
        return count, digest, content_md5

    def readinto(self, view: memoryview) -> int:
        """Fill the front of `view` with body bytes; 0 once the body is complete."""
        if self.complete or not len(view):
            return 0
        if self._chunked:
            return self._readinto_chunked(view)
        if self._remaining is None:
            count = self._reader.readinto(view)
            if not count:
                self.complete = True
            return count
        count = self._reader.readinto(view[: min(len(view), self._remaining)])
        if not count:
            raise ProtocolError(f"connection closed with {self._remaining} body bytes still expected")
        self._remaining -= count
        self.complete = self._remaining == 0
        return count

    def _readinto_chunked(self, view: memoryview) -> int:
        if self._chunk_left == 0:
            size_line = self._reader.readline(MAX_LINE_BYTES)
            try:
                self._chunk_left = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"malformed chunk size line {size_line[:80]!r}") from None
            if self._chunk_left == 0:
                while self._reader.readline(MAX_LINE_BYTES) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.complete = True
                return 0
        count = self._reader.readinto(view[: min(len(view), self._chunk_left)])
        if not count:
            raise ProtocolError("connection closed inside a chunk")
        self._chunk_left -= count
        if self._chunk_left == 0:
            self._reader.readline(MAX_LINE_BYTES)  # the CRLF after the chunk
        return count

    def read(self, limit: int = 1 << 20) -> bytes:
        """Up to `limit` body bytes (all of a small body)."""
        data = bytearray()
        while len(data) < limit and not self.complete:
            want = min(limit - len(data), _READ_BUFFER_BYTES, self._remaining or _READ_BUFFER_BYTES)
            piece = bytearray(want)
            count = self.readinto(memoryview(piece))
            if not count:
                break
            data += piece[:count]
        return bytes(data)
