"""Content-addressed object data on disk, written and read as streams.

An upload is streamed into a temporary file while MD5 (lakeFS's checksum/ETag for the local
blockstore) and SHA-256 (the address) are computed; the file is then renamed to
`objects/<sha[:2]>/<sha>`. Identical content is stored once, nothing is held in memory, and
hashlib releases the GIL on large chunks so parallel uploads overlap.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Blob:
    address: str  # SHA-256 hex of the content
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

    def ingest(self, read: Callable[[int], bytes]) -> Blob:
        """Consume `read` until it returns b"" and store the bytes under their address."""
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                while chunk := read(CHUNK_BYTES):
                    md5.update(chunk)
                    sha.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            address = sha.hexdigest()
            final = self.path(address)
            if final.exists():
                os.unlink(tmp_name)
            else:
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp_name, final)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return Blob(address=address, checksum=md5.hexdigest(), size=size)

    def path(self, address: str) -> Path:
        return self._objects / address[:2] / address
