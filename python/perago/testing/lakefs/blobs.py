"""Content-addressed object data on disk, written and read as streams.

An upload is read through one reused buffer per thread while its MD5 is computed (lakeFS's
checksum/ETag for the local blockstore, which clients see) and stored as
`objects/<md5[:2]>/<md5>-<size>` by renaming a temporary file. Identical content is stored
once: a body that fits in the buffer is hashed before any file is written, a larger one
streams through its temporary file, so memory stays bounded; hashlib releases the GIL on
large chunks so parallel uploads overlap. One hash, not MD5 plus SHA-256, because hashing is
the emulator's main CPU cost per uploaded byte and MD5 is needed for the checksum anyway; the
address only has to tell apart the contents tests upload, not resist crafted collisions.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CHUNK_BYTES = 1 << 20
_buffers = threading.local()


def _fill(readinto: Callable[[memoryview], int], buffer: memoryview) -> int:
    """Read into `buffer` until it is full or the body ends; how many bytes it holds."""
    held = 0
    while held < len(buffer) and (count := readinto(buffer[held:])):
        held += count
    return held


def _blob(checksum: str, size: int) -> Blob:
    return Blob(address=f"{checksum}-{size}", checksum=checksum, size=size)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def _thread_buffer() -> memoryview:
    """One reused buffer per handler thread: a fresh 1 MiB bytes object per read costs page faults."""
    buffer = getattr(_buffers, "view", None)
    if buffer is None:
        buffer = _buffers.view = memoryview(bytearray(CHUNK_BYTES))
    return buffer


@dataclass(frozen=True)
class Blob:
    address: str  # "<md5 hex>-<size>"
    checksum: str  # MD5 hex, the ETag lakeFS reports
    size: int


class BlobStore:
    """Blobs under `root`; safe for concurrent writers (each writes its own temp file)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._tmp = root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def ingest(self, readinto: Callable[[memoryview], int]) -> Blob:
        """Consume `readinto` until it returns 0 and store the bytes under their address.

        A body that fits in the thread's buffer is hashed before anything touches the disk,
        so content already stored (a client re-uploading unchanged files) costs no file at
        all: a temporary file per such upload would be created and deleted again, and on
        ext4 without a journal every freshly freed inode slows later file creations for
        minutes. Larger bodies stream through a temporary file as they arrive."""
        md5 = hashlib.md5(usedforsecurity=False)
        buffer = _thread_buffer()
        size = _fill(readinto, buffer)
        md5.update(buffer[:size])
        if size < len(buffer):  # the whole body is in memory
            blob = _blob(md5.hexdigest(), size)
            if not self.path(blob.address).exists():
                self._place(self._write_temporary(lambda fd: _write_all(fd, buffer[:size])), blob)
            return blob

        def stream(fd: int) -> None:
            nonlocal size
            _write_all(fd, buffer[:size])
            while count := readinto(buffer):
                chunk = buffer[:count]
                md5.update(chunk)
                _write_all(fd, chunk)
                size += count

        tmp_name = self._write_temporary(stream)
        blob = _blob(md5.hexdigest(), size)
        self._place(tmp_name, blob)
        return blob

    def _write_temporary(self, write: Callable[[int], None]) -> str:
        """A new file in `tmp/` filled by `write(fd)`; its name (removed if `write` fails)."""
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        try:
            try:
                write(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quietly(tmp_name)
            raise
        return tmp_name

    def _place(self, tmp_name: str, blob: Blob) -> None:
        """Rename a complete temporary file to the blob's address (identical content already
        stored there wins)."""
        final = self.path(blob.address)
        try:
            if final.exists():
                os.unlink(tmp_name)
            else:
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp_name, final)
        except BaseException:
            _unlink_quietly(tmp_name)
            raise

    def path(self, address: str) -> Path:
        return self._objects / address[:2] / address
