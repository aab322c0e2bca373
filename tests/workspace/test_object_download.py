"""Object downloads against the emulator and against a server that misbehaves on purpose:
the files and digests written, and the readable errors of a body cut short, a stalled
server, content that does not match the listed MD5, plus chunked bodies."""

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
from perago.workspace.errors import LakeFSError
from perago.workspace.keys import WorkspaceProjection
from perago.workspace.lakefs_client import LakeFSClient, ObjectRead
from perago.workspace.transfer import download_workspace

from .conftest import Repo

BIG = os.urandom(3 << 20)  # several socket reads and several buffers of the receive loop


def digest_of(data: bytes) -> str:
    digest = new_digest()
    digest.update(data)
    return digest.hexdigest()


def download(repo: Repo, ref: str, root: Path) -> dict[str, str]:
    root.mkdir()
    manifest = download_workspace(repo.client, repo.name, ref, WorkspaceProjection("data"), root, concurrency=4)
    return {relative: entry.digest for relative, entry in manifest.entries.items()}


def test_downloads_write_the_objects_and_record_their_content_digests(repo: Repo, tmp_path: Path) -> None:
    ref = repo.commit_files("main", {"data/big.bin": BIG, "data/empty.txt": b""})
    expected = {key.removeprefix("data/"): content for key, content in repo.tree(ref).items() if key.startswith("data/")}

    digests = download(repo, ref, tmp_path / "ws")

    assert {relative: (tmp_path / "ws" / relative).read_bytes() for relative in digests} == expected
    assert digests == {relative: digest_of(content) for relative, content in expected.items()}


def test_content_that_does_not_match_the_listed_md5_fails_the_download(
    lakefs: Any, repo: Repo, tmp_path: Path
) -> None:
    ref = repo.commit_files("main", {"data/big.bin": BIG})
    checksum = hashlib.md5(BIG).hexdigest()
    blob = Path(lakefs.data_dir) / "objects" / checksum[:2] / f"{checksum}-{len(BIG)}"
    blob.write_bytes(BIG[:-1] + bytes([BIG[-1] ^ 1]))  # bit rot in the store: same size and ETag

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


def download_one(client: LakeFSClient) -> tuple[ObjectRead, bytes]:
    pieces: list[bytes] = []
    received = client.download_object("repo", "main", "data/file", lambda piece: pieces.append(bytes(piece)), timeout=0.3)
    return received, b"".join(pieces)


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
    server: Callable[[socket.socket, threading.Event], None], cause: str
) -> None:
    with object_server(server) as client, pytest.raises(LakeFSError) as raised:
        download_one(client)
    assert str(raised.value) == (
        f"lakeFS download 'data/file' from 'main' of repository 'repo' failed (transport error): {cause}"
    )


def test_a_chunked_body_is_received_whole() -> None:
    body = os.urandom(200_000)

    def chunked(connection: socket.socket, stop: threading.Event) -> None:
        chunks = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in (body[:70_000], body[70_000:]))
        connection.sendall(b'HTTP/1.1 200 OK\r\nETag: "e"\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks + b"0\r\n\r\n")

    with object_server(chunked) as client:
        assert download_one(client) == (ObjectRead(size=len(body), etag="e"), body)
