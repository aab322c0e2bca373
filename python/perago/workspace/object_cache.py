"""A content-addressed cache of downloaded lakeFS objects, shared by attempts on one host (W-18).

Where: `<workspace root>/.perago-object-cache/`, beside the attempt directories (whose
names start with `task_id=`, the only entries the attempt GC removes), so retries and
later attempts of the same input, read-only ones included, copy their files from local
disk instead of fetching them from lakeFS.

    blobs/<sha256[0]>/<sha256>    object content, named by its SHA-256; mtime = last use
    index/<key[0]>/<key>          a symlink to the blob holding what lakeFS stores under
                                  (endpoint, repository, checksum, size); key = SHA-256 of
                                  those four. Read with readlink, never followed.
    tmp/                          index links being replaced (renamed into place)

How it fills: when an attempt ends, every downloaded file the task left untouched (same
inode, size, ctime and mtime as the download manifest; re-hashed when that is not
conclusive) is *moved* into `blobs/` instead of being deleted with the workspace. Moving
costs no copy and no extra disk space at download time, which matters because a cold
download is what most attempts do; files the task rewrote are not cached (their original
bytes are gone), so a retry fetches exactly those again. Identical content under several
keys or repositories is stored once.

How it is used: a cached object is handed to a task as a reflink (FICLONE) or a copy
(`file_clone`), never a hard link, since the task may write in place. Every use re-hashes
the content as it is copied (the hash is the manifest's anyway); a blob whose content does
not match its name (a process that kept a moved file open and wrote to it, a disk fault)
is deleted and the object fetched again.

Bounded: `prune` removes blobs unused for `max_age_seconds` (default: the attempt GC TTL,
24 h), then the least recently used ones until the total is within `max_bytes`, then index
entries whose blob is gone. The runtime prunes after an attempt once per
`prune_interval_seconds`, or sooner when this process has added enough to go over the
bound. Several executor processes may share the directory: every write is a rename of a
complete file, and a blob removed while another process copies it stays readable through
the descriptor that process already holds.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from perago.config import DEFAULT_WORKSPACE_GC_TTL
from perago.workspace.file_clone import clone
from perago.workspace.object_http import thread_buffer, write_all

OBJECT_CACHE_DIR_NAME = ".perago-object-cache"
DEFAULT_CACHE_MAX_BYTES = 20 << 30
DEFAULT_PRUNE_INTERVAL_SECONDS = 3600.0
_STALE_TMP_SECONDS = 3600.0
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class PruneReport:
    removed_blobs: int
    removed_bytes: int
    kept_bytes: int


class ObjectCache:
    """One cache directory; thread-safe, and safe to share between processes."""

    def __init__(
        self,
        root: Path,
        *,
        namespace: str,
        max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        max_age_seconds: float = DEFAULT_WORKSPACE_GC_TTL.total_seconds(),
        prune_interval_seconds: float = DEFAULT_PRUNE_INTERVAL_SECONDS,
    ) -> None:
        self.root = Path(root)
        self.namespace = namespace
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.prune_interval_seconds = prune_interval_seconds
        self._blobs = self.root / "blobs"
        self._index = self.root / "index"
        self._tmp = self.root / "tmp"
        self._lock = threading.Lock()
        self._layout_ready = False
        self._last_prune: float | None = None
        self._estimated_bytes = 0

    # -- reading --------------------------------------------------------------------

    def index_key(self, repository: str, checksum: str, size: int) -> str:
        identity = "\x00".join([self.namespace, repository, checksum, str(size)])
        return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()

    def blob_path(self, sha256: str) -> Path:
        return self._blobs / sha256[0] / sha256

    def _index_path(self, key: str) -> Path:
        return self._index / key[0] / key

    def lookup(self, repository: str, checksum: str, size: int) -> str | None:
        """The SHA-256 of the cached content of this object, or None when it is not cached."""
        return _blob_named_by(self._index_path(self.index_key(repository, checksum, size)))

    def fill(self, repository: str, checksum: str, size: int, target_fd: int) -> str | None:
        """Write the cached content of an object into the empty `target_fd`; its SHA-256, or
        None: not cached, or the cached copy was wrong (then it is removed and `target_fd`
        is emptied again), so download it."""
        expected = self.lookup(repository, checksum, size)
        if expected is None:
            return None
        blob = self.blob_path(expected)
        try:
            source_fd = os.open(blob, _OPEN_READ)
        except OSError:
            return None
        try:
            actual_size = os.fstat(source_fd).st_size
            digest = _copy_hashing(source_fd, target_fd) if actual_size == size else None
        finally:
            os.close(source_fd)
        if digest != expected:
            logger.warning(
                "object cache entry is corrupt; fetching the object again",
                repository=repository,
                cache_blob=str(blob),
                expected_size=size,
                actual_size=actual_size,
            )
            _unlink_quietly(blob)
            os.ftruncate(target_fd, 0)
            os.lseek(target_fd, 0, os.SEEK_SET)
            return None
        _touch(blob)
        return digest

    # -- filling --------------------------------------------------------------------

    def adopt(self, repository: str, checksum: str, size: int, path: Path, sha256: str) -> bool:
        """Move the verified file at `path` (content `sha256`) into the cache for this object.

        Best effort: False when it could not be moved (another filesystem, a read-only
        cache); the caller then deletes the file as usual.
        """
        try:
            self._ensure_layout()
            # Replacing an existing blob is harmless: same name, same content, and a reader
            # keeps the descriptor it holds. The mtime (download time) stands for last use.
            os.replace(path, self.blob_path(sha256))
            with self._lock:
                self._estimated_bytes += size
            self._link_index(self.index_key(repository, checksum, size), sha256)
        except OSError as error:
            logger.debug("object not cached", cache_dir=str(self.root), error=str(error))
            return False
        return True

    def _ensure_layout(self) -> None:
        """Create the 16-way fan-out directories once, so adopting a file is a rename and a
        symlink (ext4 and XFS index large directories; the fan-out only keeps listings short)."""
        if self._layout_ready:
            return
        for base in (self._blobs, self._index):
            for prefix in "0123456789abcdef":
                (base / prefix).mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._layout_ready = True

    def _link_index(self, key: str, sha256: str) -> None:
        target = f"../../blobs/{sha256[0]}/{sha256}"
        final = self._index_path(key)
        try:
            os.symlink(target, final)
            return
        except FileExistsError:
            if _blob_named_by(final) == sha256:
                return
        temporary = self._tmp / f"{key}.{os.getpid()}.{threading.get_ident()}"
        _unlink_quietly(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, final)

    # -- pruning --------------------------------------------------------------------

    def prune_if_due(self, now: float | None = None) -> PruneReport | None:
        """Prune when the interval has passed or this process may have overfilled the cache."""
        current = time.monotonic() if now is None else now
        with self._lock:
            due = (
                self._last_prune is None
                or current - self._last_prune >= self.prune_interval_seconds
                or self._estimated_bytes > self.max_bytes
            )
            if not due:
                return None
            self._last_prune = current
        try:
            return self.prune()
        except OSError as error:
            logger.warning("object cache prune failed", cache_dir=str(self.root), error=str(error))
            return None

    def prune(self, now: float | None = None) -> PruneReport:
        """Remove blobs unused for `max_age_seconds`, then the least recently used beyond
        `max_bytes`, then index entries without a blob and stale temporary files."""
        wall = time.time() if now is None else now
        blobs = sorted(_files(self._blobs), key=lambda item: item[1].st_mtime)
        removed = removed_bytes = 0
        total = sum(info.st_size for _, info in blobs)
        for path, info in blobs:
            if wall - info.st_mtime < self.max_age_seconds and total <= self.max_bytes:
                break
            if _unlink_quietly(path):
                removed += 1
                removed_bytes += info.st_size
            total -= info.st_size
        for path, _info in _files(self._index, symlinks=True):
            target = _blob_named_by(path)
            if target is None or not self.blob_path(target).exists():
                _unlink_quietly(path)
        for path, info in _files(self._tmp, symlinks=True):
            if wall - info.st_mtime > _STALE_TMP_SECONDS:
                _unlink_quietly(path)
        with self._lock:
            self._estimated_bytes = total
        if removed:
            logger.info(
                "object cache pruned", cache_dir=str(self.root), blobs=removed, bytes=removed_bytes, kept_bytes=total
            )
        return PruneReport(removed_blobs=removed, removed_bytes=removed_bytes, kept_bytes=total)



def _blob_named_by(index_entry: Path) -> str | None:
    """The SHA-256 an index symlink points at, or None (missing or not one of ours)."""
    try:
        name = os.readlink(index_entry).rsplit("/", 1)[-1]
    except OSError:
        return None
    return name if _SHA256_HEX.match(name) else None


def _copy_hashing(source_fd: int, target_fd: int) -> str:
    """Copy (reflink where possible) and return the SHA-256 of what `target_fd` now holds."""
    digest = hashlib.sha256()
    buffer = thread_buffer()
    if clone(source_fd, target_fd):
        offset = 0
        while count := os.preadv(target_fd, [buffer], offset):  # the clone, as the task sees it
            digest.update(buffer[:count])
            offset += count
        return digest.hexdigest()
    while count := os.readv(source_fd, [buffer]):
        piece = buffer[:count]
        digest.update(piece)
        write_all(target_fd, piece)
    return digest.hexdigest()


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # last use, for pruning
    except OSError:
        pass


def _files(directory: Path, *, symlinks: bool = False) -> list[tuple[Path, os.stat_result]]:
    """Regular files (or symlinks) under `directory`, with their lstat."""
    found: list[tuple[Path, os.stat_result]] = []
    pending = [directory]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif (entry.is_symlink() if symlinks else entry.is_file(follow_symlinks=False)):
                    found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return found


def _unlink_quietly(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
