"""Moving bytes between lakeFS and the attempt workspace: parallel, streaming, bounded.

Downloads list the input ref once (1000 keys per page, W-20), refuse unmappable or
colliding keys before writing anything, then take each object from the local object
cache (W-18) or stream it in one GET straight to its file while hashing it (W-19, W-21),
with at most `concurrency` transfers in flight; a download whose size, ETag or MD5 does
not match the listing fails (retryably) naming the key. Files are created with
O_EXCL|O_NOFOLLOW inside a fresh directory, so nothing can be written outside the attempt
workspace. Uploads are sent from disk with sendfile (W-22), each by the thread that
confirmed its content changed. The first failure cancels the transfers not yet started.

Multipart uploads (W-22) are not used: lakeFS offers them only as pre-signed multipart
(lakefs-sdk `ExperimentalApi.create_presign_multipart_upload`, when `GET /config` reports
`pre_sign_multipart_upload`, i.e. S3 blockstores), which needs pre-signed URLs straight to
the object store; the emulator, like lakeFS on a local blockstore, answers pre-signing
false. Parallelism comes from many single-request uploads at once instead, each streamed
from disk, so a large file costs no memory.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from perago.workspace.errors import LakeFSError
from perago.workspace.keys import WorkspaceProjection, check_collisions
from perago.workspace.lakefs_client import LakeFSClient, ObjectRead
from perago.workspace.manifest import (
    Manifest,
    ManifestEntry,
    RemoteObject,
    Upload,
    unchanged_entries,
)
from perago.workspace.object_cache import ObjectCache


def transfers_for_this_host() -> int:
    """Two transfers per CPU this process may run on, at least 4 and at most 16.

    A transfer alternates between waiting for the network and work on a core (copying, MD5 and
    content digest); two per core keep the cores busy, and more only contend for them (measured
    on 2 cores against a local lakeFS: 8 streams cost ~15 % more CPU and wall time than 4). Four
    at least, so a small host still hides a remote server's latency.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(4, min(16, 2 * cores))


DEFAULT_CONCURRENCY = transfers_for_this_host()

_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

_MD5_HEX = re.compile(r"[0-9a-f]{32}")

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_bounded(
    work: Callable[[Item], Result], items: Iterable[Item], concurrency: int
) -> list[Result]:
    """Apply `work` to every item on at most `concurrency` threads; the results in item order.

    Each thread takes the next item as it finishes one. The first failure stops the items
    not yet started and is raised once the running ones are done; so does an interruption
    of the calling thread. Plain threads over a shared counter rather than a pool of
    futures: a workspace of a thousand files would otherwise cost a future, a condition and
    a queue entry per file, in each direction.
    """
    items = list(items)
    if concurrency <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    results: list[Result | None] = [None] * len(items)
    failures: list[BaseException] = []
    stopping = threading.Event()
    claims = itertools.count()  # next() is atomic under the GIL

    def take_items() -> None:
        while not (failures or stopping.is_set()):
            index = next(claims)
            if index >= len(items):
                return
            try:
                results[index] = work(items[index])
            except BaseException as error:  # noqa: BLE001 - re-raised by the calling thread
                failures.append(error)

    threads = [
        threading.Thread(target=take_items, name=f"perago-transfer-{n}", daemon=True)
        for n in range(min(concurrency, len(items)))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        stopping.set()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return results  # type: ignore[return-value]


def plan_download(
    objects: Iterable[RemoteObject], projection: WorkspaceProjection
) -> list[tuple[str, RemoteObject]]:
    """(relative path, object) for every key to materialize, after refusing bad keys."""
    planned: list[tuple[str, RemoteObject]] = []
    for remote in sorted(objects, key=lambda item: item.key.encode("utf-8", "surrogatepass")):
        relative = projection.relative_path(remote.key, remote.size_bytes)
        if relative is not None:
            planned.append((relative, remote))
    check_collisions((remote.key for _, remote in planned), what="lakeFS object keys")
    return planned


def download_workspace(
    client: LakeFSClient,
    repository: str,
    ref: str,
    projection: WorkspaceProjection,
    root: Path,
    *,
    cache: ObjectCache | None = None,
    verify_md5: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
) -> Manifest:
    """Materialize the objects under the workspace prefix at `ref` into the empty directory `root`.

    Each file comes from `cache` when it holds the object, else from one GET that is
    verified (`verify_download`); `retain_unchanged` later moves what the task left
    untouched into the cache.
    """
    listed = client.list_objects(repository, ref, projection.listing_prefix, timeout=timeout)
    planned = plan_download(listed, projection)
    if cache is not None:
        cache.refresh()
    directories = sorted({relative.rsplit("/", 1)[0] for relative, _ in planned if "/" in relative})
    for directory in directories:
        os.makedirs(root / directory, exist_ok=True)

    def fetch(item: tuple[str, RemoteObject]) -> ManifestEntry:
        relative, remote = item
        fd = os.open(root / relative, _CREATE_FLAGS, 0o644)
        try:
            digest = None
            if cache is not None:
                digest = cache.fill(repository, remote.checksum, remote.size_bytes, fd)
            from_cache = digest is not None
            if digest is None:
                digest = _download_verified(client, repository, ref, remote, fd, verify_md5, timeout)
            info = os.fstat(fd)
        finally:
            os.close(fd)
        return ManifestEntry(
            relative=relative,
            remote=remote,
            digest=digest,
            size=info.st_size,
            inode=info.st_ino,
            ctime_ns=info.st_ctime_ns,
            mtime_ns=info.st_mtime_ns,
            from_cache=from_cache,
        )

    manifest = Manifest()
    for entry in run_bounded(fetch, planned, concurrency):
        manifest.add(entry)
    manifest.seal()
    return manifest


def _download_verified(
    client: LakeFSClient,
    repository: str,
    ref: str,
    remote: RemoteObject,
    fd: int,
    verify_md5: bool,
    timeout: float | None,
) -> str:
    """Stream one object into `fd`, hashing as it passes; its content digest once verified."""
    with_md5 = verify_md5 and is_md5_checksum(remote.checksum)
    received = client.download_object(repository, ref, remote.key, fd, md5=with_md5, timeout=timeout)
    problem = verify_download(remote, received, received.md5)
    if problem is not None:
        raise LakeFSError(f"download {remote.key!r} from {ref!r} of repository {repository!r}", None, problem)
    return received.digest


def retain_unchanged(root: Path, manifest: Manifest, repository: str, cache: ObjectCache) -> int:
    """Move every downloaded file the task left unchanged into `cache`; returns how many.

    Called as the attempt ends, just before its workspace is removed: the files would be
    deleted anyway, so caching them is a rename, not a copy. Files that came from the cache
    are skipped (it holds them already), and so are files the task hard-linked elsewhere:
    that other name could write into the cache.
    """
    downloaded = [entry for entry in manifest.entries.values() if not entry.from_cache]
    return cache.adopt(
        (repository, entry.remote.checksum, entry.size, root / entry.relative, entry.digest)
        for entry, info in unchanged_entries(root, manifest, downloaded)
        if info.st_nlink == 1
    )


def is_md5_checksum(checksum: str) -> bool:
    return _MD5_HEX.fullmatch(checksum) is not None


def verify_download(remote: RemoteObject, received: ObjectRead, content_md5: str | None) -> str | None:
    """Why a downloaded object cannot be trusted, or None (W-19).

    The size must match the listing, the ETag lakeFS sends must be the listed checksum (the
    same object version), and, where the checksum is a plain MD5 (lakeFS's local blockstore,
    S3 single-part uploads), the content's MD5 must equal it.
    """
    if received.size != remote.size_bytes:
        return f"received {received.size} bytes, lakeFS lists {remote.size_bytes}"
    if received.etag is not None and remote.checksum and received.etag != remote.checksum:
        return f"the ETag {received.etag!r} of the response is not the listed checksum {remote.checksum!r}"
    if content_md5 is not None and content_md5 != remote.checksum:
        return f"content MD5 {content_md5} does not match the checksum {remote.checksum} lakeFS lists"
    return None


def upload_changed(
    client: LakeFSClient,
    repository: str,
    branch: Callable[[], str],
    candidates: Iterable[Upload],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
) -> list[Upload]:
    """Upload every candidate whose content differs from the download; the uploads sent, in order.

    Each thread confirms a candidate and streams it, so a task that rewrote every file has its
    files hashed while earlier ones are on the wire. `branch()` names the branch to write to;
    it is first called for the first upload, so nothing is created when nothing changed.
    """

    def send(upload: Upload) -> Upload | None:
        if not upload.differs():
            return None
        client.upload_object(
            repository,
            branch(),
            upload.key,
            upload.path,
            upload.size,
            content_type=upload.content_type,
            metadata=upload.metadata,
            timeout=timeout,
        )
        return upload

    return [upload for upload in run_bounded(send, candidates, concurrency) if upload is not None]
