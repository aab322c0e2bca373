"""The content digest is plain BLAKE3, so manifests and cache blobs named before it moved to
Rust (the `blake3` PyPI package) stay valid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from perago.workspace.content_digest import (
    ALGORITHM,
    copy_with_digest,
    digest_of_fd,
    digest_of_file,
    new_digest,
)

EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
# The official BLAKE3 test vector for 1024 input bytes (byte i is i % 251).
VECTOR_1024 = "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"
# 300,000 such bytes, as digested by the `blake3` 1.0.11 package perago used before: long
# enough for the multi-chunk SIMD paths.
VECTOR_300000 = "6cc9dce05d4cff8c5bef5c5a24681e42b13f03e34a0bc5e66f65a91d48c944fa"


def vector_input(length: int) -> bytes:
    return bytes(index % 251 for index in range(length))


def test_the_digest_is_unkeyed_blake3() -> None:
    assert ALGORITHM == "blake3"
    assert new_digest().hexdigest() == EMPTY
    digest = new_digest()
    digest.update(vector_input(1024))
    assert digest.hexdigest() == VECTOR_1024


@pytest.mark.parametrize("piece", [1, 1000, 4096, 1 << 20])
def test_pieces_of_any_size_give_the_same_digest_as_before(piece: int) -> None:
    data = vector_input(300_000)
    digest = new_digest()
    for start in range(0, len(data), piece):
        digest.update(bytearray(data[start : start + piece]))
    assert digest.hexdigest() == VECTOR_300000
    assert digest.hexdigest() == VECTOR_300000, "reading the digest does not end it"


def test_files_are_digested_from_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"skip" + vector_input(300_000))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 4, os.SEEK_SET)
        assert digest_of_fd(fd) == VECTOR_300000
    finally:
        os.close(fd)
    (tmp_path / "empty").write_bytes(b"")
    assert digest_of_file(tmp_path / "empty") == EMPTY


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        digest_of_file(tmp_path / "link")


def test_a_copy_carries_the_bytes_and_their_digest(tmp_path: Path) -> None:
    (tmp_path / "source").write_bytes(vector_input(300_000))
    source = os.open(tmp_path / "source", os.O_RDONLY)
    target = os.open(tmp_path / "target", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert copy_with_digest(source, target) == VECTOR_300000
    finally:
        os.close(source)
        os.close(target)
    assert (tmp_path / "target").read_bytes() == vector_input(300_000)


def test_a_closed_fd_is_an_os_error_with_its_errno() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError) as raised:
        digest_of_fd(fd)
    assert raised.value.errno == 9  # EBADF
