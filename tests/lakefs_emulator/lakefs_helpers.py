"""Short calls on the generated lakefs-sdk client shared by the emulator tests."""

from __future__ import annotations

import lakefs_sdk
import pytest
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.exceptions import ApiException


def upload(sdk: LakeFSClient, repo: str, branch: str, path: str, content: bytes) -> lakefs_sdk.ObjectStats:
    return sdk.objects_api.upload_object(repo, branch, path, content=content)


def commit(sdk: LakeFSClient, repo: str, branch: str, message: str = "c", **kwargs: object) -> lakefs_sdk.Commit:
    return sdk.commits_api.commit(repo, branch, lakefs_sdk.CommitCreation(message=message, **kwargs))


def read(sdk: LakeFSClient, repo: str, ref: str, path: str) -> bytes:
    return bytes(sdk.objects_api.get_object(repo, ref, path))


def api_error(status: int, call, *args: object, **kwargs: object) -> ApiException:
    """Run `call`, require an ApiException with `status`, and return it for body checks."""
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == status, caught.value
    return caught.value


def publish_from_another_process(url: str, key: str, secret: str, repo: str, worker: str) -> tuple[str, str]:
    """Stage 20 objects on a hidden branch and squash-merge them into `target-<worker>`."""
    sdk = LakeFSClient(lakefs_sdk.Configuration(host=url, username=key, password=secret))
    target, stage = f"target-{worker}", f"stage-{worker}"
    base = sdk.branches_api.create_branch(repo, lakefs_sdk.BranchCreation(name=target, source="main"))
    sdk.branches_api.create_branch(repo, lakefs_sdk.BranchCreation(name=stage, source=base, hidden=True))
    for i in range(20):
        sdk.objects_api.upload_object(repo, stage, f"out/{worker}/{i}", content=f"{worker}:{i}".encode())
    sdk.commits_api.commit(repo, stage, lakefs_sdk.CommitCreation(message="perago try", metadata={"worker": worker}))
    merged = sdk.refs_api.merge_into_branch(repo, stage, target, merge=lakefs_sdk.Merge(squash_merge=True))
    sdk.branches_api.delete_branch(repo, stage)
    return base, merged.reference
