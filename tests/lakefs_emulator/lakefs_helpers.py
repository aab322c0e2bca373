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
