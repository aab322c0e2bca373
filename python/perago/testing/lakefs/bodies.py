"""Streaming request bodies: Content-Length, chunked transfer coding, multipart/form-data.

urllib3 sends a file-like upload body with chunked coding, the generated SDK sends
multipart/form-data with a `content` part; both are consumed as streams so a large object is
never held in memory. `drain()` discards what a handler left unread so the keep-alive
connection stays in sync.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Optional

from .errors import bad_request

_READ = 1 << 20


class BodyReader:
    """The request body as a stream, whatever the framing."""

    def __init__(self, rfile: BinaryIO, length: Optional[int], chunked: bool) -> None:
        self._rfile = rfile
        self._remaining = length if length is not None else 0
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not self._remaining

    def read(self, n: int = _READ) -> bytes:
        if self._done:
            return b""
        if self._chunked:
            return self._read_chunked(n)
        data = self._rfile.read(min(n, self._remaining))
        if not data:
            raise bad_request("request body shorter than Content-Length")
        self._remaining -= len(data)
        self._done = self._remaining == 0
        return data

    def readinto(self, view: memoryview) -> int:
        """Fill the front of `view` with the next bytes of the body; 0 at the end."""
        if self._done or not len(view):
            return 0
        if self._chunked:
            data = self._read_chunked(len(view))
            view[: len(data)] = data
            return len(data)
        count = self._rfile.readinto(view[: min(len(view), self._remaining)])  # type: ignore[attr-defined]
        if not count:
            raise bad_request("request body shorter than Content-Length")
        self._remaining -= count
        self._done = self._remaining == 0
        return count

    def _read_chunked(self, n: int) -> bytes:
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise bad_request("malformed chunked request body") from None
            if self._chunk_left == 0:
                while self._rfile.readline(1024).strip():
                    pass  # trailers
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise bad_request("truncated chunked request body")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)
        return data

    def read_all(self, limit: int) -> bytes:
        parts = []
        size = 0
        while chunk := self.read():
            size += len(chunk)
            if size > limit:
                raise bad_request(f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def drain(self) -> None:
        while self.read():
            pass

    @property
    def finished(self) -> bool:
        return self._done


_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)="?([^";]*)"?')


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `type; a="b"; c=d` into ("type", {"a": "b", "c": "d"})."""
    main = value.split(";", 1)[0].strip().lower()
    return main, {k.lower(): v for k, v in _PARAM.findall(value)}


class MultipartPart:
    """One part of a multipart body, readable until the next boundary."""

    def __init__(self, stream: "MultipartStream", headers: dict[str, str]) -> None:
        self._stream = stream
        self.headers = headers
        _, params = header_params(headers.get("content-disposition", ""))
        self.name = params.get("name", "")
        self.content_type = headers.get("content-type")

    def read(self, n: int = _READ) -> bytes:
        return self._stream.read_part(n)

    def readinto(self, view: memoryview) -> int:
        data = self._stream.read_part(len(view))
        view[: len(data)] = data
        return len(data)


class MultipartStream:
    """Iterate the parts of a multipart/form-data body without buffering whole parts."""

    def __init__(self, body: BodyReader, boundary: str) -> None:
        if not boundary:
            raise bad_request("multipart body without a boundary")
        self._body = body
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = bytearray(b"\r\n")  # so the opening delimiter matches like the others
        self._eof = False
        self._in_part = False

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) < wanted and not self._eof:
            chunk = self._body.read(max(wanted - len(self._buffer), 65536))
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True

    def read_part(self, n: int) -> bytes:
        if not self._in_part:
            return b""
        self._fill(n + len(self._delimiter))
        index = self._buffer.find(self._delimiter)
        if index == -1:
            if self._eof:
                raise bad_request("multipart body ended inside a part")
            take = min(n, len(self._buffer) - len(self._delimiter) + 1)
        else:
            take = min(n, index)
            if take == 0:
                self._in_part = False
                return b""
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data

    def next_part(self) -> Optional[MultipartPart]:
        while self.read_part(_READ):
            pass  # skip the rest of the current part (or nothing)
        while True:
            self._fill(len(self._delimiter) + 2)
            index = self._buffer.find(self._delimiter)
            if index != -1:
                break
            if self._eof:
                raise bad_request("multipart body without a closing boundary")
            del self._buffer[: len(self._buffer) - len(self._delimiter)]  # preamble
        del self._buffer[: index + len(self._delimiter)]
        self._fill(2)
        if self._buffer[:2] == b"--":
            return None
        headers: dict[str, str] = {}
        self._fill(65536)
        end = self._buffer.find(b"\r\n\r\n")
        if end == -1:
            raise bad_request("multipart part headers too long or malformed")
        for line in bytes(self._buffer[:end]).decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        del self._buffer[: end + 4]
        self._in_part = True
        return MultipartPart(self, headers)
