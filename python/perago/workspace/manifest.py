"""What was downloaded, and what the task changed since.

The manifest is taken while downloading (the content digest, see `content_digest`, is
computed as the bytes stream through), so the workspace is hashed at most once more, and
only for files whose inode, size, ctime or mtime moved (W-21). ctime cannot be set by a
task, so a file rewritten with `shutil.copy2` (which restores the old mtime) is still
noticed; a file whose ctime falls inside the last `RACY_WINDOW_NS` before the manifest was
sealed is always rehashed, because a write in the same coarse clock tick would leave ctime
unchanged (git's "racily clean" rule).

Only files whose content differs are uploaded, so untouched objects keep their content
type and user metadata (W-09); a rewritten file carries its content type and metadata
forward. Symlinks, fifos, sockets and devices left by the task are never followed or
uploaded: they fail the attempt terminally, naming the path (W-12).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from perago.workspace.errors import WorkspaceContractError
from perago.workspace.content_digest import digest_of_file
from perago.workspace.keys import MARKER_NAME, WorkspaceProjection, check_collisions

RACY_WINDOW_NS = 100_000_000
COARSE_RACY_WINDOW_NS = 2_000_000_000
"""Used when the filesystem keeps timestamps in whole milliseconds or seconds (FAT, some NFS)."""


@dataclass(frozen=True)
class RemoteObject:
    """One object of the input ref, as listed by lakeFS."""

    key: str
    size_bytes: int
    checksum: str
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestEntry:
    """A downloaded file: its remote object, content digest and the local stat after writing."""

    relative: str
    remote: RemoteObject
    digest: str
    """`content_digest` of the file as downloaded."""
    size: int
    inode: int
    ctime_ns: int
    mtime_ns: int
    from_cache: bool = False
    """Copied from the local object cache, which therefore already holds this content."""


@dataclass
class Manifest:
    """Downloaded files by relative path; sealed once the download has finished."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    sealed_at_ns: int | None = None
    racy_window_ns: int = RACY_WINDOW_NS

    def add(self, entry: ManifestEntry) -> None:
        self.entries[entry.relative] = entry

    def seal(self) -> None:
        self.sealed_at_ns = time.time_ns()
        if self.entries and all(e.ctime_ns % 1_000_000 == 0 for e in self.entries.values()):
            self.racy_window_ns = COARSE_RACY_WINDOW_NS

    def is_racy(self, entry: ManifestEntry) -> bool:
        if self.sealed_at_ns is None:
            return True
        return entry.ctime_ns >= self.sealed_at_ns - self.racy_window_ns

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.entries.values())


@dataclass(frozen=True)
class Upload:
    """A local file to write to `key` on the staging branch, if its content changed."""

    relative: str
    key: str
    path: Path
    size: int
    content_type: str | None
    metadata: Mapping[str, str]
    downloaded_digest: str | None = None
    """The digest of the downloaded file when only its content can tell whether the task changed
    it (same size, stat moved); None when it certainly changed (a new file, another size)."""

    def differs(self) -> bool:
        """Whether the file must be uploaded: hashes it if the stat could not tell."""
        return self.downloaded_digest is None or digest_of_file(self.path) != self.downloaded_digest


@dataclass(frozen=True)
class ChangeSet:
    """The sync plan: objects to write and keys to delete; empty means a no-op completion."""

    uploads: tuple[Upload, ...]
    deletes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.uploads or self.deletes)

    @property
    def upload_bytes(self) -> int:
        return sum(upload.size for upload in self.uploads)


@dataclass(frozen=True)
class ChangeSurvey:
    """What the walk of the workspace found: files that may have changed and keys to delete.

    The candidates whose stat could not tell are confirmed by their content only where they
    are uploaded (`Upload.differs`), so a task that rewrote every file has its files hashed
    while the earlier ones are on the wire.
    """

    candidates: tuple[Upload, ...]
    deletes: tuple[str, ...]

    @property
    def may_change(self) -> bool:
        return bool(self.candidates or self.deletes)


def _walk_regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative path, lstat) of every regular file; refuse anything that is not a file or directory."""
    pending = [("", root)]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = f"{prefix}{entry.name}"
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append((f"{relative}/", Path(entry.path)))
                elif stat.S_ISREG(info.st_mode):
                    yield relative, info
                else:
                    kind = _special_kind(info.st_mode)
                    raise WorkspaceContractError(
                        f"workspace publication does not support {kind}: {relative}"
                    )


def _special_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlinks"
    if stat.S_ISFIFO(mode):
        return "fifos"
    if stat.S_ISSOCK(mode):
        return "sockets"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "device files"
    return "special files"


def survey_changes(root: Path, manifest: Manifest, projection: WorkspaceProjection) -> ChangeSurvey:
    """Walk the attempt workspace and compare it with the download manifest by stat alone.

    Refuses what cannot be published (special files, unmappable names, colliding names)
    before anything is hashed or written; candidates come sorted by key.
    """
    candidates: list[Upload] = []
    seen: list[str] = []
    for relative, info in _walk_regular_files(root):
        if relative.rsplit("/", 1)[-1] == MARKER_NAME:
            continue
        key = projection.object_key(relative)
        seen.append(relative)
        entry = manifest.entries.get(relative)
        verdict = True if entry is None else _stat_says(info, entry, manifest)
        if verdict is False:
            continue
        candidates.append(
            Upload(
                relative=relative,
                key=key,
                path=root / relative,
                size=info.st_size,
                content_type=entry.remote.content_type if entry else None,
                metadata=dict(entry.remote.metadata) if entry else {},
                downloaded_digest=entry.digest if entry is not None and verdict is None else None,
            )
        )
    check_collisions(seen, what="workspace files")
    present = set(seen)
    deletes = tuple(
        sorted(entry.remote.key for rel, entry in manifest.entries.items() if rel not in present)
    )
    candidates.sort(key=lambda upload: upload.key)
    return ChangeSurvey(candidates=tuple(candidates), deletes=deletes)


def unchanged_entries(
    root: Path, manifest: Manifest, entries: Iterable[ManifestEntry] | None = None
) -> Iterator[tuple[ManifestEntry, os.stat_result]]:
    """Those of `entries` (default: all) whose file is still the regular file the download
    wrote, with the same content, and the file's lstat.

    Files whose stat moved are not re-hashed (they are taken as changed): this feeds the
    object cache, where a miss only costs a download.
    """
    for entry in manifest.entries.values() if entries is None else entries:
        path = root / entry.relative
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_ino != entry.inode:
            continue
        if info.st_ctime_ns != entry.ctime_ns or info.st_mtime_ns != entry.mtime_ns:
            continue
        if not _content_changed(path, info, entry, manifest):
            yield entry, info


def _stat_says(info: os.stat_result, entry: ManifestEntry, manifest: Manifest) -> bool | None:
    """True: changed (size differs); False: unchanged (stat untouched, not racy); None: hash it."""
    if info.st_size != entry.size:
        return True
    untouched = (
        info.st_ino == entry.inode
        and info.st_ctime_ns == entry.ctime_ns
        and info.st_mtime_ns == entry.mtime_ns
    )
    if untouched and not manifest.is_racy(entry):
        return False
    return None


def _content_changed(
    path: Path, info: os.stat_result, entry: ManifestEntry, manifest: Manifest
) -> bool:
    verdict = _stat_says(info, entry, manifest)
    if verdict is not None:
        return verdict
    return digest_of_file(path) != entry.digest
