"""The lakeFS client wrapper against the emulator: paging, bulk deletes, metadata, retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from perago.workspace.errors import LakeFSError
from perago.workspace.lakefs_client import normalize_endpoint
from perago.workspace.transfer import run_bounded

from .conftest import Repo


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("lakefs.example:8000", "http://lakefs.example:8000/api/v1"),
        ("https://lakefs.example/", "https://lakefs.example/api/v1"),
        ("https://lakefs.example/api/v1", "https://lakefs.example/api/v1"),
        ("https://proxy.example/lakefs/api/v1/", "https://proxy.example/lakefs/api/v1"),
    ],
)
def test_endpoints_are_normalized_like_the_sdk_does(given: str, expected: str) -> None:
    assert normalize_endpoint(given) == expected


def test_listing_pages_past_1000_keys_and_bulk_delete_batches(repo: Repo, tmp_path: Path) -> None:
    client = repo.client
    client.create_branch(repo.name, "many", repo.initial)
    one = tmp_path / "one"
    one.write_bytes(b"1")
    keys = [f"many/k{index:05d}" for index in range(1050)]
    run_bounded(
        lambda key: client.upload_object(repo.name, "many", key, one, 1, content_type=None, metadata={}),
        keys,
        8,
    )
    assert [item.key for item in client.list_objects(repo.name, "many", "many/")] == keys
    client.delete_objects(repo.name, "many", keys)
    assert list(client.list_objects(repo.name, "many", "many/")) == []


def test_uploads_keep_content_type_and_user_metadata(repo: Repo, tmp_path: Path) -> None:
    source = tmp_path / "file"
    source.write_bytes(b"payload")
    repo.client.create_branch(repo.name, "meta", repo.initial)
    repo.client.upload_object(
        repo.name, "meta", "m/file", source, 7, content_type="image/png", metadata={"Owner": "mixer"}
    )
    (stats,) = list(repo.client.list_objects(repo.name, "meta", "m/"))
    assert (stats.size_bytes, stats.content_type) == (7, "image/png")
    assert {k.lower(): v for k, v in stats.metadata.items()} == {"owner": "mixer"}


def test_a_dropped_read_is_retried(lakefs: Any, repo: Repo) -> None:
    from perago.testing.lakefs import FaultRule

    lakefs.faults.add(FaultRule(operation="getCommit", drop_rate=1.0, times=1))
    try:
        assert repo.client.get_commit(repo.name, repo.initial).id == repo.initial
    finally:
        lakefs.faults.clear()


def test_a_dropped_merge_is_reported_as_an_unknown_outcome_and_not_resent(
    lakefs: Any, repo: Repo
) -> None:
    from perago.testing.lakefs import FaultRule

    repo.client.create_branch(repo.name, "src", repo.initial)
    change = repo.commit_files("src", {"data/merged.txt": b"m"})
    lakefs.faults.add(FaultRule(operation="mergeIntoBranch", drop_after_apply_rate=1.0, times=1))
    try:
        with pytest.raises(LakeFSError) as raised:
            repo.client.merge(repo.name, change, "main", message="m", metadata={})
    finally:
        lakefs.faults.clear()
    assert raised.value.outcome_unknown
    head = repo.head()
    assert head.parents == (repo.initial,), "the merge was applied exactly once"
