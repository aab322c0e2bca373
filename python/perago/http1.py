"""HTTP/1.1 response heads: the one parser behind perago's two small HTTP clients.

perago talks to Conductor with small JSON bodies read whole, from a thread or from the
broker's event loop (`perago.conductor.transport`), and moves workspace objects of any
size to and from lakeFS, streamed (`perago.workspace.http_wire`). Both read a response
head the same way, and decide the same way whether the connection survives it and how
its body is framed; that is this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_HEADERS = 200

Framing = Literal["none", "chunked", "length", "close"]


class ProtocolError(ConnectionError):
    """The peer broke HTTP/1.1 framing or closed the connection mid-message."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    reason: str
    headers: dict[str, str]
    """Lower-case names; a repeated header's values joined with ", "."""
    keep_alive: bool
    """The connection may carry another request after this response's body."""

    def framing(self, method: str = "GET") -> Framing:
        """How the body ends: no body, chunks, Content-Length bytes, or the connection's close."""
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            return "none"
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return "chunked"
        if "content-length" in self.headers:
            return "length"
        return "close"

    @property
    def content_length(self) -> int:
        length = self.headers.get("content-length", "")
        if not length.isdigit():
            raise ProtocolError(f"malformed Content-Length {length[:40]!r}")
        return int(length)


def parse_head(block: bytes) -> ResponseHead:
    """The status line and header lines of one response (the blank line excluded)."""
    lines = block.split(b"\n")
    status_line = lines[0].rstrip(b"\r")
    version, _, rest = status_line.decode("latin-1").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProtocolError(f"malformed HTTP status line {status_line[:80]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise ProtocolError(f"more than {MAX_HEADERS} response headers")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ProtocolError(f"malformed response header {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    tokens = {token.strip() for token in headers.get("connection", "").lower().split(",")}
    keep_alive = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    return ResponseHead(int(code), reason, headers, keep_alive)
