"""The HTTP/1.1 transport against a scripted socket server: every framing Conductor may use."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perago.conductor.errors import ConductorTransportError
from perago.conductor.transport import HttpResponse, HttpTransport, ResponseParser, ServerAddress

Script = Callable[[socket.socket, bytes], bool]
"""Gets the connection and one request head+body; returns False to close the connection."""


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.transports: list[HttpTransport] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append(request)
                if not self.script(conn, request):
                    return

    def transport(self) -> HttpTransport:
        self.transports.append(
            HttpTransport(ServerAddress.parse(f"http://127.0.0.1:{self.port}/api"), timeout_seconds=5)
        )
        return self.transports[-1]

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def reply(raw: bytes, keep: bool = True) -> Script:
    def script(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(raw)
        return keep

    return script


def test_content_length_body_and_keep_alive(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"))
    transport = server.transport()
    for _ in range(3):
        response = transport.request("GET", "/tasks/poll/batch/x?count=1", None, {"Accept": "*/*"})
        assert (response.status, response.body, response.content_type) == (200, b"[]", "application/json")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"GET /api/tasks/poll/batch/x?count=1 HTTP/1.1\r\n")
    assert b"Host: 127.0.0.1:" in first and b"Accept: */*" in first


def test_post_sends_the_body_with_its_length(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nt-1"))
    response = server.transport().request("POST", "/tasks", b'{"taskId":"t-1"}')
    assert response.body == b"t-1"
    assert server.requests[0].endswith(b'Content-Length: 16\r\n\r\n{"taskId":"t-1"}')


@settings(max_examples=30, deadline=None)
@given(body=st.binary(min_size=0, max_size=3000), cuts=st.lists(st.integers(1, 500), max_size=8))
def test_chunked_bodies_are_reassembled(body: bytes, cuts: list[int]) -> None:
    chunks, rest = [], body
    for cut in cuts:
        if rest:
            chunks.append(rest[:cut])
            rest = rest[cut:]
    if rest:
        chunks.append(rest)
    encoded = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\nTrailer: x\r\n\r\n"
    server = ScriptedServer(reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded))
    try:
        transport = server.transport()
        assert transport.request("GET", "/x").body == body
        assert transport.request("GET", "/x").body == body
        assert server.connections == 1
    finally:
        server.close()


def test_no_body_statuses_and_interim_answers(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(reply(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
    transport = server.transport()
    assert (transport.request("POST", "/tasks/update-v2", b"{}").status, server.connections) == (204, 1)
    assert transport.request("POST", "/tasks/update-v2", b"{}").body == b""
    assert server.connections == 1


def test_read_to_close_body_then_reconnect(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(reply(b"HTTP/1.0 200 OK\r\n\r\nwhole body", keep=False))
    transport = server.transport()
    assert transport.request("GET", "/x").body == b"whole body"
    assert transport.request("GET", "/x").body == b"whole body"
    assert server.connections == 2


def test_connection_close_is_honoured(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(reply(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy", keep=False))
    transport = server.transport()
    assert transport.request("GET", "/x").status == 503
    assert transport.request("GET", "/x").status == 503
    assert server.connections == 2


def test_idle_connection_closed_by_the_server_is_retried_once(serve: Callable[[Script], ScriptedServer]) -> None:
    answered: list[int] = []

    def answer_once_per_connection(conn: socket.socket, request: bytes) -> bool:
        answered.append(1)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return False  # close after answering, without saying so: the keep-alive race

    server = serve(answer_once_per_connection)
    transport = server.transport()
    assert transport.request("POST", "/tasks", b"{}").body == b"ok"
    assert transport.request("POST", "/tasks", b"{}").body == b"ok"
    assert server.connections == 2 and len(answered) == 2


def test_a_fresh_connection_dropped_without_answer_is_an_error(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(lambda conn, request: False)
    with pytest.raises(ConductorTransportError, match="POST /tasks"):
        server.transport().request("POST", "/tasks", b"{}")
    assert len(server.requests) == 1


def test_truncated_body_is_an_error(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", keep=False))
    with pytest.raises(ConductorTransportError, match="middle of the HTTP response body"):
        server.transport().request("GET", "/x")


def test_connection_refused_is_an_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    transport = HttpTransport(ServerAddress.parse(f"http://127.0.0.1:{port}/api"), timeout_seconds=2)
    with pytest.raises(ConductorTransportError, match="ConnectionRefusedError"):
        transport.request("GET", "/x")


def test_server_address_keeps_the_api_path_and_basic_auth() -> None:
    address = ServerAddress.parse(" http://user:p%40ss@conductor.example:8080/api/ ")
    assert (address.host, address.port, address.base_path) == ("conductor.example", 8080, "/api")
    assert address.basic_auth == "Basic dXNlcjpwQHNz"
    assert address.display() == "http://conductor.example:8080/api"
    with pytest.raises(ValueError, match="CONDUCTOR_SERVER_URL"):
        ServerAddress.parse("conductor:8080")


# -- ResponseParser: the sans-I/O parser both transports share ---------------------------------

_ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"taskId\":\"t-1\"}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
]


@settings(max_examples=60, deadline=None)
@given(raw=st.sampled_from(_ANSWERS), cuts=st.sets(st.integers(1, 200), max_size=12))
def test_parser_gives_the_same_answer_however_the_bytes_are_split(raw: bytes, cuts: set[int]) -> None:
    whole = ResponseParser().feed(raw)
    assert whole is not None
    parser = ResponseParser()
    points = [0, *sorted(c for c in cuts if c < len(raw)), len(raw)]
    pieces = [raw[a:b] for a, b in zip(points, points[1:], strict=False)]
    for piece in pieces[:-1]:
        assert parser.feed(piece) is None
    assert parser.feed(pieces[-1]) == whole
    assert not parser.leftover


def test_parser_reports_body_type_and_status() -> None:
    parser = ResponseParser()
    assert not parser.received
    response = parser.feed(_ANSWERS[0])
    assert response == HttpResponse(200, b'{"taskId":"t-1"}', "application/json")
    assert parser.received and parser.keep_alive
    assert ResponseParser().feed(_ANSWERS[1]) == HttpResponse(200, b"abc", "")
    assert ResponseParser().feed(_ANSWERS[3]) == HttpResponse(204, b"", "")


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0", True),
    ],
)
def test_parser_says_whether_the_connection_may_carry_another_request(head: bytes, keep_alive: bool) -> None:
    parser = ResponseParser()
    assert parser.feed(head + b"\r\n\r\n") is not None
    assert parser.keep_alive is keep_alive


def test_a_read_to_close_body_ends_at_eof_and_the_connection_is_done() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\nwhole") is None
    assert parser.feed(b" body") is None
    assert parser.feed_eof() == HttpResponse(200, b"whole body", "")
    assert not parser.keep_alive


def test_bytes_after_the_answer_are_left_over() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200") is not None
    assert parser.leftover


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Len", "before the HTTP response head was complete"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "middle of the HTTP response body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "middle of the HTTP response body"),
    ],
)
def test_eof_before_the_answer_is_complete_is_an_error(data: bytes, error: str) -> None:
    parser = ResponseParser()
    assert parser.feed(data) is None
    with pytest.raises(ConnectionError, match=error):
        parser.feed_eof()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed HTTP status line"),
        (b"HTTP/1.1 OK\r\n\r\n", "malformed HTTP status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "malformed chunked"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"x" * (64 * 1024), "larger than 64 KiB"),
    ],
)
def test_a_malformed_answer_is_an_error_naming_what_is_wrong(data: bytes, error: str) -> None:
    with pytest.raises(ConnectionError, match=error):
        ResponseParser().feed(data)
