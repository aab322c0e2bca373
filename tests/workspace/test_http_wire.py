"""HTTP/1.1 framing of object transfers against canned server answers on a socket pair."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from perago.workspace.content_digest import new_digest
from perago.workspace.http_wire import Connection, ProtocolError, StaleConnection


@pytest.fixture()
def wire() -> Iterator[tuple[Connection, socket.socket]]:
    client, server = socket.socketpair()
    connection = Connection(client, "lakefs.example:8000")
    try:
        yield connection, server
    finally:
        connection.close()
        server.close()


def digest_of(data: bytes) -> str:
    digest = new_digest()
    digest.update(data)
    return digest.hexdigest()


def body_of(connection: Connection, answer: bytes, server: socket.socket, method: str = "GET") -> tuple[int, bytes, bool]:
    server.sendall(answer)
    response = connection.read_response(method)
    data = response.read(1 << 20)
    return response.status, data, response.will_close


def test_the_request_head_names_the_host_and_headers(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    connection.send_head("GET", "/api/v1/x?path=a%2Fb", {"Authorization": "Basic eA=="})
    assert server.recv(4096) == (
        b"GET /api/v1/x?path=a%2Fb HTTP/1.1\r\nHost: lakefs.example:8000\r\nAuthorization: Basic eA==\r\n\r\n"
    )


def test_content_length_body_keeps_the_connection(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    answer = b'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 5\r\n\r\nhello'
    assert body_of(connection, answer, server) == (200, b"hello", False)
    assert body_of(connection, answer, server) == (200, b"hello", False), "the next answer on the same socket"


def test_chunked_body_with_trailers(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert body_of(connection, answer, server) == (200, b"hello", False)


def test_interim_answers_are_skipped_and_close_is_honoured(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    assert body_of(connection, answer, server) == (201, b"{}", True)


def test_a_body_without_length_ends_at_close(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    server.sendall(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    server.shutdown(socket.SHUT_WR)
    response = connection.read_response("GET")
    assert (response.read(100), response.will_close, response.complete) == (b"all of it", True, True)


def test_a_body_cut_short_is_an_error(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    server.shutdown(socket.SHUT_WR)
    response = connection.read_response("GET")
    with pytest.raises(ProtocolError, match="5 body bytes still expected"):
        response.read(100)


def test_no_answer_at_all_marks_the_connection_stale(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(StaleConnection):
        connection.read_response("GET")


def test_head_and_no_content_answers_have_no_body(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    assert body_of(connection, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", server, "HEAD") == (200, b"", False)
    assert body_of(connection, b"HTTP/1.1 204 No Content\r\n\r\n", server) == (204, b"", False)


@pytest.mark.parametrize(
    "answer",
    [b"SPDY/3 200 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"],
)
def test_malformed_answers_are_refused(wire: tuple[Connection, socket.socket], answer: bytes) -> None:
    connection, server = wire
    server.sendall(answer)
    with pytest.raises(ProtocolError):
        connection.read_response("GET")


# -- bodies received straight into a file (perago._core.receive_body) -----------------


def receive_into(connection: Connection, tmp_path: Path, *, md5: bool = True) -> tuple[tuple[int, str, str | None], bytes]:
    response = connection.read_response("GET")
    assert response.can_receive_into_file
    fd = os.open(tmp_path / "body", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        received = response.receive_into_file(fd, md5=md5)
    finally:
        os.close(fd)
    assert response.complete
    return received, (tmp_path / "body").read_bytes()


def test_a_length_body_goes_to_the_file_with_its_digests(
    wire: tuple[Connection, socket.socket], tmp_path: Path
) -> None:
    connection, server = wire
    body = os.urandom(3 << 20)
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    sender = threading.Thread(target=server.sendall, args=(head + body + b"HTTP/1.1 204 No Content\r\n\r\n",))
    sender.start()
    received, written = receive_into(connection, tmp_path)
    sender.join()
    assert written == body
    assert received == (len(body), digest_of(body), hashlib.md5(body).hexdigest())
    assert connection.read_response("GET").status == 204, "the next answer is still readable"


def test_an_empty_body_and_no_md5(wire: tuple[Connection, socket.socket], tmp_path: Path) -> None:
    connection, server = wire
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert receive_into(connection, tmp_path, md5=False) == ((0, digest_of(b""), None), b"")


def test_a_body_cut_short_fails_as_the_python_reads_do(
    wire: tuple[Connection, socket.socket], tmp_path: Path
) -> None:
    connection, server = wire
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="^connection closed with 5 body bytes still expected$"):
        receive_into(connection, tmp_path)


def test_a_stalled_body_times_out_by_the_socket_timeout(
    wire: tuple[Connection, socket.socket], tmp_path: Path
) -> None:
    connection, server = wire
    connection.sock.settimeout(0.2)
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nsome")
    with pytest.raises(TimeoutError, match="timed out"):
        receive_into(connection, tmp_path)


def test_only_length_bodies_are_received_in_rust(wire: tuple[Connection, socket.socket]) -> None:
    connection, server = wire
    server.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
    chunked = connection.read_response("GET")
    assert not chunked.can_receive_into_file
    with pytest.raises(ValueError, match="Content-Length body"):
        chunked.receive_into_file(0, md5=False)
    assert chunked.read() == b"x"
    server.sendall(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
    assert not connection.read_response("GET").can_receive_into_file
