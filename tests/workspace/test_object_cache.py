"""The local object cache (W-18) and verified downloads (W-19) on the lakeFS emulator."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from perago.workspace import run_workspace_attempt
from perago.workspace.content_digest import new_digest
from perago.workspace.errors import LakeFSError
from perago.workspace.lakefs_client import LakeFSClient, ObjectRead
from perago.workspace.manifest import RemoteObject
from perago.workspace.object_cache import OBJECT_CACHE_DIR_NAME, ObjectCache
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace.transfer import verify_download
from perago.workspace_spec import WorkspaceSpec

from .conftest import Repo, attempt_snapshot

ORIGINAL = {
    "keep.txt": b"keep",
    "edit.txt": b"before",
    "drop.txt": b"drop",
    "sub/deep.bin": bytes(range(256)) * 64,
}


@pytest.fixture()
def object_gets(lakefs: Any) -> Iterator[list[str]]:
    """Every object GET the emulator serves while the test runs."""
    from perago.testing.lakefs import FaultRule

    seen: list[str] = []
    lock = threading.Lock()

    def record(operation: str) -> None:
        with lock:
            seen.append(operation)

    lakefs.faults.add(FaultRule(operation="getObject", before_apply=record))
    try:
        yield seen
    finally:
        lakefs.faults.clear()


def attempt(
    repo: Repo,
    runtime: LakeFSWorkspaceRuntime,
    workspace_root: Path,
    body: Callable[[Path], Any],
    *,
    read_only: bool = False,
) -> str:
    """One attempt with its directory under `workspace_root`, as the attempt runner lays them out."""
    attempt_dir = workspace_root / f"task_id={uuid.uuid4().hex[:8]}"
    attempt_dir.mkdir(parents=True)
    output = run_workspace_attempt(
        workspace={"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
        spec=WorkspaceSpec(prefix="/data", read_only=read_only),
        attempt=attempt_snapshot(),
        execution_id=uuid.uuid4().hex,
        attempt_dir=attempt_dir,
        runtime=runtime,
        fence=lambda: None,
        run_body=body,
    )
    return output["workspace"]["ref"]


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def cache_blobs(workspace_root: Path) -> list[Path]:
    return sorted(p for p in (workspace_root / OBJECT_CACHE_DIR_NAME / "blobs").rglob("*") if p.is_file())


def test_a_second_attempt_of_the_same_input_downloads_nothing(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, object_gets: list[str]
) -> None:
    seen: list[dict[str, bytes]] = []
    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert len(object_gets) == len(ORIGINAL)
    object_gets.clear()

    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert object_gets == [], "every file came from the cache"
    assert seen == [ORIGINAL, ORIGINAL]
    attempt_dirs = [p for p in tmp_path.iterdir() if p.name.startswith("task_id=")]
    assert len(attempt_dirs) == 2 and all(not any(p.iterdir()) for p in attempt_dirs), "workspaces are gone"


def test_a_task_writing_in_place_never_reaches_the_cache(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, object_gets: list[str]
) -> None:
    attempt(repo, runtime, tmp_path, lambda root: None, read_only=True)
    blobs = {path.name: path.read_bytes() for path in cache_blobs(tmp_path)}
    object_gets.clear()

    def overwrite_in_place(root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                assert os.stat(path).st_nlink == 1, f"{path} shares its inode with another file"
                with open(path, "r+b") as handle:
                    handle.write(b"X")

    published = attempt(repo, runtime, tmp_path, overwrite_in_place)
    assert object_gets == []
    assert repo.tree(published)["data/keep.txt"] == b"Xeep"
    assert {path.name: path.read_bytes() for path in cache_blobs(tmp_path)} == blobs
    object_gets.clear()

    seen: list[dict[str, bytes]] = []
    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert seen == [ORIGINAL] and object_gets == []


@pytest.mark.parametrize("corrupt", [b"BEFORE", b"bef"], ids=["same size, wrong content", "truncated"])
def test_a_corrupt_cache_entry_is_detected_and_fetched_again(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, object_gets: list[str], corrupt: bytes
) -> None:
    attempt(repo, runtime, tmp_path, lambda root: None, read_only=True)
    (blob,) = [path for path in cache_blobs(tmp_path) if path.read_bytes() == b"before"]
    blob.write_bytes(corrupt)
    object_gets.clear()

    seen: list[dict[str, bytes]] = []
    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert seen == [ORIGINAL]
    assert len(object_gets) == 1, "only the corrupt entry was fetched again"
    assert blob.read_bytes() == b"before", "the fresh download replaced the corrupt blob"


def test_a_file_the_task_changed_is_not_cached_and_is_fetched_by_the_retry(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, object_gets: list[str]
) -> None:
    def edit_then_fail(root: Path) -> None:
        (root / "edit.txt").write_bytes(b"after")
        raise RuntimeError("task failed after editing")

    with pytest.raises(RuntimeError, match="task failed"):
        attempt(repo, runtime, tmp_path, edit_then_fail)
    object_gets.clear()
    seen: list[dict[str, bytes]] = []
    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert seen == [ORIGINAL]
    assert len(object_gets) == 1


def test_a_file_the_task_hard_linked_elsewhere_is_not_cached(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, object_gets: list[str]
) -> None:
    outside = tmp_path / "kept-by-the-task"
    attempt(repo, runtime, tmp_path, lambda root: os.link(root / "keep.txt", outside), read_only=True)
    object_gets.clear()
    attempt(repo, runtime, tmp_path, lambda root: None, read_only=True)
    assert len(object_gets) == 1, "keep.txt is fetched again, the rest came from the cache"
    outside.write_bytes(b"task writes through its own link")
    seen: list[dict[str, bytes]] = []
    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert seen == [ORIGINAL]


def test_without_the_cache_every_attempt_downloads(
    lakefs: Any, repo: Repo, tmp_path: Path, object_gets: list[str]
) -> None:
    client = LakeFSClient(lakefs.url, lakefs.access_key_id, lakefs.secret_access_key)
    runtime = LakeFSWorkspaceRuntime(client, object_cache=False)
    for _ in range(2):
        attempt(repo, runtime, tmp_path, lambda root: None, read_only=True)
    assert len(object_gets) == 2 * len(ORIGINAL)
    assert not (tmp_path / OBJECT_CACHE_DIR_NAME).exists()


def emulator_blob(lakefs: Any, repo: Repo, key: str) -> Path:
    stats = repo.stats(repo.initial)[key]
    return Path(lakefs.data_dir) / "objects" / stats.checksum[:2] / f"{stats.checksum}-{stats.size_bytes}"


def test_a_download_whose_content_does_not_match_the_checksum_fails_naming_the_key(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    stored = emulator_blob(lakefs, repo, "data/edit.txt")
    original = stored.read_bytes()
    stored.write_bytes(b"BEFORE")  # the store's bytes rot; lakeFS still reports the old checksum
    try:
        with pytest.raises(LakeFSError, match="'data/edit.txt'.*content MD5") as raised:
            attempt(repo, runtime, tmp_path, lambda root: None, read_only=True)
    finally:
        stored.write_bytes(original)
    assert raised.value.status is None, "a transport-level failure: retryable"


def test_verification_checks_size_etag_and_md5() -> None:
    remote = RemoteObject(key="k", size_bytes=3, checksum="900150983cd24fb0d6963f7d28e17f72")
    good = ObjectRead(size=3, etag="900150983cd24fb0d6963f7d28e17f72", digest="d")
    assert verify_download(remote, good, "900150983cd24fb0d6963f7d28e17f72") is None
    assert verify_download(remote, good, None) is None
    assert "received 2 bytes" in str(verify_download(remote, ObjectRead(size=2, etag=None, digest="d"), None))
    assert "ETag" in str(verify_download(remote, ObjectRead(size=3, etag="other", digest="d"), None))
    assert "content MD5" in str(verify_download(remote, good, "0" * 32))


def test_md5_verification_can_be_turned_off_for_stores_whose_etags_are_not_md5(
    lakefs: Any, repo: Repo, tmp_path: Path
) -> None:
    client = LakeFSClient(lakefs.url, lakefs.access_key_id, lakefs.secret_access_key)
    runtime = LakeFSWorkspaceRuntime(client, verify_md5=False, object_cache=False)
    stored = emulator_blob(lakefs, repo, "data/edit.txt")
    original = stored.read_bytes()
    stored.write_bytes(b"BEFORE")
    seen: list[dict[str, bytes]] = []
    try:
        attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    finally:
        stored.write_bytes(original)
    assert seen[0]["edit.txt"] == b"BEFORE"


def test_a_kept_alive_connection_the_server_closed_is_replaced(
    lakefs: Any, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, object_gets: list[str]
) -> None:
    runtime.object_cache_enabled = False
    attempt(repo, runtime, tmp_path, lambda root: None, read_only=True)
    lakefs._server.close_connections()  # what an idle timeout on the server side does
    seen: list[dict[str, bytes]] = []
    attempt(repo, runtime, tmp_path, lambda root: seen.append(read_tree(root)), read_only=True)
    assert seen == [ORIGINAL]


# -- the cache directory on its own ---------------------------------------------------


def digest_of_bytes(content: bytes) -> str:
    digest = new_digest()
    digest.update(content)
    return digest.hexdigest()


def cache_with(tmp_path: Path, contents: dict[str, bytes], **options: Any) -> ObjectCache:
    cache = ObjectCache(tmp_path / "cache", namespace="http://lakefs", **options)
    for checksum, content in contents.items():
        source = tmp_path / f"adopt-{checksum}"
        source.write_bytes(content)
        assert cache.adopt([("repo", checksum, len(content), source, digest_of_bytes(content))]) == 1
        assert not source.exists(), "adopting moves the file"
    return cache


def test_prune_drops_entries_unused_for_the_ttl_then_the_least_recently_used(tmp_path: Path) -> None:
    cache = cache_with(tmp_path, {"old": b"o" * 10, "mid": b"m" * 10, "new": b"n" * 10}, max_bytes=15)
    now = time.time()
    ages = {"old": 90_000, "mid": 600, "new": 60}  # seconds since last use; the TTL is 24 h
    for checksum, age in ages.items():
        sha = cache.lookup("repo", checksum, 10)
        assert sha is not None
        os.utime(cache.blob_path(sha), (now - age, now - age))
    report = cache.prune(now=now)
    assert (report.removed_blobs, report.kept_bytes) == (2, 10)
    assert cache.lookup("repo", "new", 10) is not None
    assert cache.lookup("repo", "old", 10) is None and cache.lookup("repo", "mid", 10) is None


def test_entries_are_keyed_by_repository_checksum_and_size(tmp_path: Path) -> None:
    cache = cache_with(tmp_path, {"abc": b"payload"})
    assert cache.lookup("repo", "abc", 7) is not None
    assert cache.lookup("other-repo", "abc", 7) is None
    assert cache.lookup("repo", "abc", 8) is None
    elsewhere = ObjectCache(tmp_path / "cache", namespace="http://elsewhere")
    elsewhere.refresh()
    assert elsewhere.lookup("repo", "abc", 7) is None


def test_a_cache_filled_by_a_perago_naming_blobs_by_sha256_is_not_used_and_not_called_corrupt(
    tmp_path: Path,
) -> None:
    """Caches written before blobs were named by BLAKE3 hold SHA-256 names under keys
    without the algorithm: those lines are never looked up (a lookup would re-hash the blob,
    find its name wrong and delete it as corrupt); the blobs age out through `prune`."""
    import hashlib

    content = b"payload"
    old_key = hashlib.sha256("\x00".join(["http://lakefs", "repo", "abc", "7"]).encode()).hexdigest()
    old_name = hashlib.sha256(content).hexdigest()
    (tmp_path / "cache" / "blobs" / old_name[0]).mkdir(parents=True)
    blob = tmp_path / "cache" / "blobs" / old_name[0] / old_name
    blob.write_bytes(content)
    (tmp_path / "cache" / "index.log").write_text(f"{old_key} {old_name}\n")
    cache = ObjectCache(tmp_path / "cache", namespace="http://lakefs")
    cache.refresh()
    assert cache.lookup("repo", "abc", 7) is None
    assert blob.exists()


def test_another_process_sees_entries_after_a_refresh_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    writer = cache_with(tmp_path, {"abc": b"payload"})
    reader = ObjectCache(tmp_path / "cache", namespace="http://lakefs")
    assert reader.lookup("repo", "abc", 7) is None, "nothing read yet"
    with open(tmp_path / "cache" / "index.log", "ab") as log:
        log.write(b"not a line\n" + writer.index_key("repo", "late", 1).encode() + b" 12")  # torn append
    reader.refresh()
    assert reader.lookup("repo", "abc", 7) == writer.lookup("repo", "abc", 7)
    assert reader.lookup("repo", "late", 1) is None
