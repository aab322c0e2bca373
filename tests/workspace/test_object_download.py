"""Object downloads on both receive paths: Content-Length bodies on plain sockets go through
Rust (`Response.receive_into_file`), everything else through the Python loop. Both must
write the same files, record the same digests and fail with the same readable errors."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from perago.workspace.content_digest import new_digest
from perago.workspace import lakefs_client
from perago.workspace.errors import LakeFSError
from perago.workspace.http_wire import Response
from perago.workspace.keys import WorkspaceProjection
from perago.workspace.lakefs_client import LakeFSClient, ObjectRead
from perago.workspace.transfer import download_workspace

from .conftest import Repo

BIG = os.urandom(3 << 20)  # several socket reads, several buffers of the Python loop


def digest_of(data: bytes) -> str:
    digest = new_digest()
    digest.update(data)
    return digest.hexdigest()


@pytest.fixture(params=["rust", "python"])
def receive_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on one receive path; the other is made to fail if it is used."""

    def python_loop_must_not_run(response: Response, buffer: memoryview) -> Iterator[memoryview]:
        raise AssertionError("a Content-Length body on a plain socket went through the Python loop")

    if request.param == "rust":
        monkeypatch.setattr(lakefs_client, "read_body_into", python_loop_must_not_run)
    else:
        monkeypatch.setattr(Response, "can_receive_into_file", property(lambda self: False))
    return str(request.param)


def download(repo: Repo, ref: str, root: Path, **options: Any) -> dict[str, str]:
    root.mkdir()
    manifest = download_workspace(repo.client, repo.name, ref, WorkspaceProjection("data"), root, concurrency=4, **options)
    return {relative: entry.digest for relative, entry in manifest.entries.items()}


def test_downloads_write_the_objects_and_record_their_content_digests(
    repo: Repo, tmp_path: Path, receive_path: str
) -> None:
    ref = repo.commit_files("main", {"data/big.bin": BIG, "data/empty.txt": b""})
    expected = {key.removeprefix("data/"): content for key, content in repo.tree(ref).items() if key.startswith("data/")}

    digests = download(repo, ref, tmp_path / "ws")

    assert {relative: (tmp_path / "ws" / relative).read_bytes() for relative in digests} == expected
    assert digests == {relative: digest_of(content) for relative, content in expected.items()}


def test_content_that_does_not_match_the_listed_md5_fails_the_download(
    lakefs: Any, repo: Repo, tmp_path: Path, receive_path: str
) -> None:
    ref = repo.commit_files("main", {"data/big.bin": BIG})
    checksum = hashlib.md5(BIG).hexdigest()
    blob = Path(lakefs.data_dir) / "objects" / checksum[:2] / f"{checksum}-{len(BIG)}"
    blob.write_bytes(BIG[:-1] + bytes([BIG[-1] ^ 1]))  # bit rot in the store, same size and ETag

    with pytest.raises(LakeFSError, match=f"content MD5 [0-9a-f]{{32}} does not match the checksum {checksum} lakeFS lists"):
        download(repo, ref, tmp_path / "ws")


# -- a server that misbehaves on purpose --------------------------------------------------


@contextmanager
def object_server(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[LakeFSClient]:
    """A client for a one-trick server: every request on every connection gets `answer`."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    piece = connection.recv(65536)
                    if not piece:
                        break
                    request += piece
                answer(connection, stop)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield LakeFSClient(f"http://127.0.0.1:{listener.getsockname()[1]}", "key", "secret")
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        server.join(timeout=10)


def download_one(client: LakeFSClient, fd: int) -> ObjectRead:
    return client.download_object("repo", "main", "data/file", fd, md5=True, timeout=0.3)


def cut_short(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 300)


def stall(connection: socket.socket, stop: threading.Event) -> None:
    cut_short(connection, stop)
    stop.wait(10)


@pytest.mark.parametrize(
    ("server", "cause"),
    [
        (cut_short, "ProtocolError: connection closed with 700 body bytes still expected"),
        (stall, "TimeoutError: timed out"),
    ],
    ids=["body cut short", "server stalls"],
)
def test_an_incomplete_body_fails_the_download_naming_why(
    server: Callable[[socket.socket, threading.Event], None], cause: str, tmp_path: Path, receive_path: str
) -> None:
    fd = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with object_server(server) as client, pytest.raises(LakeFSError) as raised:
            download_one(client, fd)
    finally:
        os.close(fd)
    assert str(raised.value) == (
        f"lakeFS download 'data/file' from 'main' of repository 'repo' failed (transport error): {cause}"
    )


def test_a_chunked_body_is_received_by_the_python_loop(tmp_path: Path) -> None:
    body = os.urandom(200_000)

    def chunked(connection: socket.socket, stop: threading.Event) -> None:
        chunks = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in (body[:70_000], body[70_000:]))
        connection.sendall(b'HTTP/1.1 200 OK\r\nETag: "e"\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks + b"0\r\n\r\n")

    fd = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT, 0o644)
    with object_server(chunked) as client:
        received = download_one(client, fd)
    os.close(fd)
    assert received == ObjectRead(size=len(body), etag="e", digest=digest_of(body), md5=hashlib.md5(body).hexdigest())
    assert (tmp_path / "file").read_bytes() == body
