"""Moving bytes between lakeFS and the attempt workspace: parallel, streaming, bounded.

Downloads list the input ref once (1000 keys per page, W-20), refuse unmappable or
colliding keys before writing anything, then stream each object in one GET straight to
its file while hashing it (W-19, W-21), with at most `concurrency` transfers in flight.
Files are created with O_EXCL|O_NOFOLLOW inside a fresh directory, so nothing can be
written outside the attempt workspace. Uploads stream from disk (W-22); deletes go in
bulk batches (W-23). The first failure cancels the transfers not yet started.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from perago.workspace.errors import LakeFSError
from perago.workspace.keys import WorkspaceProjection, check_collisions
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.manifest import (
    ChangeSet,
    Manifest,
    ManifestEntry,
    RemoteObject,
    Upload,
)

DEFAULT_CONCURRENCY = 8
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_bounded(
    work: Callable[[Item], Result], items: Iterable[Item], concurrency: int
) -> list[Result]:
    """Apply `work` to every item with at most `concurrency` in flight; fail fast on the first error."""
    items = list(items)
    if not items:
        return []
    if concurrency <= 1 or len(items) == 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [future.result() for future in futures]


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
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
) -> Manifest:
    """Materialize the objects under the workspace prefix at `ref` into the empty directory `root`."""
    listed = client.list_objects(repository, ref, projection.listing_prefix, timeout=timeout)
    planned = plan_download(listed, projection)
    directories = sorted({relative.rsplit("/", 1)[0] for relative, _ in planned if "/" in relative})
    for directory in directories:
        os.makedirs(root / directory, exist_ok=True)

    def fetch(item: tuple[str, RemoteObject]) -> ManifestEntry:
        relative, remote = item
        digest = hashlib.sha256()
        fd = os.open(root / relative, _CREATE_FLAGS, 0o644)
        with os.fdopen(fd, "wb") as sink:
            written = client.download_object(
                repository, ref, remote.key, sink, sink_update=digest.update, timeout=timeout
            )
            sink.flush()
            info = os.fstat(sink.fileno())
        if written != remote.size_bytes:
            raise LakeFSError(
                f"download {remote.key!r} from {ref!r} of repository {repository!r}",
                None,
                f"received {written} bytes, the listing says {remote.size_bytes}",
            )
        return ManifestEntry(
            relative=relative,
            remote=remote,
            sha256=digest.hexdigest(),
            size=written,
            inode=info.st_ino,
            ctime_ns=info.st_ctime_ns,
            mtime_ns=info.st_mtime_ns,
        )

    manifest = Manifest()
    for entry in run_bounded(fetch, planned, concurrency):
        manifest.add(entry)
    manifest.seal()
    return manifest


def apply_changes(
    client: LakeFSClient,
    repository: str,
    branch: str,
    changes: ChangeSet,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
) -> None:
    """Write the sync plan to the (staging) branch: bulk deletes, then parallel streaming uploads."""
    if changes.deletes:
        client.delete_objects(repository, branch, list(changes.deletes), timeout=timeout)

    def send(upload: Upload) -> None:
        client.upload_object(
            repository,
            branch,
            upload.key,
            upload.path,
            upload.size,
            content_type=upload.content_type,
            metadata=upload.metadata,
            timeout=timeout,
        )

    run_bounded(send, changes.uploads, concurrency)
