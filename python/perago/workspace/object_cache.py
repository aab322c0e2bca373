"""A content-addressed cache of downloaded lakeFS objects, shared by attempts on one host (W-18).

Where: `<workspace root>/.perago-object-cache/`, beside the attempt directories (whose
names start with `task_id=`, the only entries the attempt GC removes), so retries and
later attempts of the same input, read-only ones included, copy their files from local
disk instead of fetching them from lakeFS.

    blobs/<digest[0]>/<digest>    object content, named by its content digest (BLAKE3, see
                                  `content_digest`); mtime = last use
    index.log                     lines "<key> <digest>": the blob holding what lakeFS stores
                                  under (endpoint, repository, checksum, size); key = SHA-256
                                  of those four and the digest algorithm. Appended with
                                  O_APPEND (one write per attempt), read incrementally,
                                  compacted by `prune`. Lines written by a perago naming
                                  blobs by another algorithm (SHA-256 before) have other keys,
                                  so they are never looked up; their blobs age out.

An append-only log rather than one small file or symlink per object because creating an
inode is the expensive part of filling the cache on ext4 (measured: as costly as the rename
of the blob itself); a lost or torn line only costs a download.

How it fills: when an attempt ends, every downloaded file the task left untouched (same
inode, size, ctime and mtime as the download manifest; re-hashed when that is not
conclusive) is *moved* into `blobs/` instead of being deleted with the workspace, and its
index lines are appended. Moving costs no copy and no extra disk space at download time,
which matters because a cold download is what most attempts do; files the task rewrote
are not cached (their original bytes are gone), so a retry fetches exactly those again.
Identical content under several keys or repositories is stored once.

How it is used: a cached object is handed to a task as a reflink (FICLONE) or a copy
(`file_clone`), never a hard link, since the task may write in place. Every use re-hashes
the content as it is copied (the hash is the manifest's anyway); a blob whose content does
not match its name (a process that kept a moved file open and wrote to it, a disk fault)
is deleted and the object fetched again.

Bounded: `prune` removes blobs unused for `max_age_seconds` (default: the attempt GC TTL,
24 h), then the least recently used ones until the total is within `max_bytes`, then
rewrites the index without the lines whose blob is gone. The runtime prunes after an
attempt once per `prune_interval_seconds`, or sooner when this process has added enough to
go over the bound. Several executor processes may share the directory: every write is a
rename of a complete file or an O_APPEND write of whole lines, and a blob removed while
another process copies it stays readable through the descriptor that process already holds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from perago.config import DEFAULT_WORKSPACE_GC_TTL
from perago.workspace.content_digest import ALGORITHM as DIGEST_ALGORITHM
from perago.workspace.content_digest import copy_with_digest, digest_of_fd
from perago.workspace.file_clone import clone
from perago.workspace.object_http import write_all

OBJECT_CACHE_DIR_NAME = ".perago-object-cache"
DEFAULT_CACHE_MAX_BYTES = 20 << 30
DEFAULT_PRUNE_INTERVAL_SECONDS = 3600.0
_HEX_256 = re.compile(r"^[0-9a-f]{64}$")
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_OPEN_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


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
        self._index_log = self.root / "index.log"
        self._entries: dict[str, str] = {}
        self._index_offset = 0
        self._index_inode = -1
        self._lock = threading.Lock()
        self._layout_ready = False
        self._last_prune: float | None = None
        self._estimated_bytes = 0

    # -- reading --------------------------------------------------------------------

    def index_key(self, repository: str, checksum: str, size: int) -> str:
        identity = "\x00".join([self.namespace, repository, checksum, str(size), DIGEST_ALGORITHM])
        return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()

    def blob_path(self, digest: str) -> Path:
        return self._blobs / digest[0] / digest

    def refresh(self) -> None:
        """Read the index lines other attempts and processes appended since the last refresh."""
        try:
            fd = os.open(self._index_log, _OPEN_READ)
        except FileNotFoundError:
            return
        try:
            info = os.fstat(fd)
            with self._lock:
                offset = self._index_offset if info.st_ino == self._index_inode else 0
            # offset 0: first read, or the log was compacted (replaced) by a prune here or in
            # another process, so it is read whole again
            data = os.pread(fd, max(0, info.st_size - offset), offset)
        finally:
            os.close(fd)
        complete = data.rfind(b"\n") + 1  # a line still being appended is read next time
        parsed = dict(_index_lines(data[:complete]))
        with self._lock:
            if offset == 0:
                self._entries = parsed
            else:
                self._entries.update(parsed)
            self._index_offset, self._index_inode = offset + complete, info.st_ino

    def lookup(self, repository: str, checksum: str, size: int) -> str | None:
        """The content digest of the cached copy of this object as of the last `refresh`, or None."""
        key = self.index_key(repository, checksum, size)
        with self._lock:
            return self._entries.get(key)

    def fill(self, repository: str, checksum: str, size: int, target_fd: int) -> str | None:
        """Write the cached content of an object into the empty `target_fd`; its digest, or
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

    def adopt(self, entries: Iterable[tuple[str, str, int, Path, str]]) -> int:
        """Move verified files into the cache; `entries` are (repository, checksum, size, path,
        content digest). Returns how many were moved.

        Best effort: a file that cannot be moved (another filesystem, a read-only cache)
        stays where it is and the caller deletes it as usual.
        """
        adopted: dict[str, str] = {}
        added = 0
        failure: OSError | None = None
        try:
            self._ensure_layout()
        except OSError as error:
            failure, entries = error, ()
        for repository, checksum, size, path, digest in entries:
            try:
                # Replacing an existing blob is harmless: same name, same content, and a reader
                # keeps the descriptor it holds. The mtime (download time) stands for last use.
                os.replace(path, self.blob_path(digest))
            except OSError as error:
                failure = error
                if error.errno in (errno.EXDEV, errno.EROFS, errno.EACCES):
                    break  # every other file would fail the same way
                continue
            added += size
            adopted[self.index_key(repository, checksum, size)] = digest
        if failure is not None:
            logger.debug("objects not cached", cache_dir=str(self.root), error=str(failure))
        if adopted:
            self._append_index([f"{key} {digest}\n" for key, digest in adopted.items()])
        with self._lock:
            self._entries.update(adopted)
            self._estimated_bytes += added
        return len(adopted)

    def _append_index(self, lines: list[str]) -> None:
        try:
            fd = os.open(self._index_log, _OPEN_APPEND, 0o644)
            try:
                write_all(fd, memoryview("".join(lines).encode("ascii")))
            finally:
                os.close(fd)
        except OSError as error:
            logger.debug("object cache index not written", cache_dir=str(self.root), error=str(error))

    def _ensure_layout(self) -> None:
        """Create the 16-way fan-out directories once, so adopting a file is one rename
        (ext4 and XFS index large directories; the fan-out only keeps listings short)."""
        if self._layout_ready:
            return
        for prefix in "0123456789abcdef":
            (self._blobs / prefix).mkdir(parents=True, exist_ok=True)
        self._layout_ready = True

    # -- pruning --------------------------------------------------------------------

    def _compact_index(self) -> None:
        """Rewrite the index with one line per key whose blob exists. Lines another process
        appends meanwhile may be lost: that costs those objects a download, nothing more."""
        try:
            with open(self._index_log, "rb") as log:
                lines = dict(_index_lines(log.read()))
        except FileNotFoundError:
            return
        kept = {key: digest for key, digest in lines.items() if self.blob_path(digest).exists()}
        temporary = self.root / f"index.log.{os.getpid()}.{threading.get_ident()}"
        temporary.write_text("".join(f"{key} {digest}\n" for key, digest in kept.items()), "ascii")
        os.replace(temporary, self._index_log)
        with self._lock:
            self._entries, self._index_offset, self._index_inode = kept, 0, -1

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
        `max_bytes`, then the index lines whose blob is gone."""
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
        self._compact_index()
        with self._lock:
            self._estimated_bytes = total
        if removed:
            logger.info(
                "object cache pruned", cache_dir=str(self.root), blobs=removed, bytes=removed_bytes, kept_bytes=total
            )
        return PruneReport(removed_blobs=removed, removed_bytes=removed_bytes, kept_bytes=total)


def _index_lines(data: bytes) -> Iterator[tuple[str, str]]:
    """(key, digest) of each well-formed index line; torn or foreign lines are skipped."""
    for line in data.decode("ascii", "replace").splitlines():
        key, _, digest = line.partition(" ")
        if _HEX_256.match(key) and _HEX_256.match(digest):
            yield key, digest


def _copy_hashing(source_fd: int, target_fd: int) -> str:
    """Copy (reflink where possible) and return the content digest of what `target_fd` now holds."""
    if clone(source_fd, target_fd):
        return digest_of_fd(target_fd)  # the clone, as the task sees it
    return copy_with_digest(source_fd, target_fd)


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # last use, for pruning
    except OSError:
        pass


def _files(directory: Path) -> list[tuple[Path, os.stat_result]]:
    """Regular files under `directory`, with their lstat."""
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
                elif entry.is_file(follow_symlinks=False):
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
