"""A fresh `notes-repo` on a lakeFS emulator, as the workspace tasks of these tests use it."""

from __future__ import annotations

from typing import Any

import lakefs_sdk

from perago.testing.lakefs import LakeFSEmulator

REPOSITORY = "notes-repo"


def create_notes_repository(lakefs: LakeFSEmulator) -> tuple[lakefs_sdk.ApiClient, dict[str, Any]]:
    """The SDK client and the workspace input (`refType: commit`, the initial commit) of a new repository."""
    sdk = lakefs_sdk.ApiClient(
        lakefs_sdk.Configuration(host=lakefs.api_url, username=lakefs.access_key_id, password=lakefs.secret_access_key)
    )
    lakefs_sdk.RepositoriesApi(sdk).create_repository(
        lakefs_sdk.RepositoryCreation(name=REPOSITORY, storage_namespace=f"local://{REPOSITORY}", default_branch="main")
    )
    initial = lakefs_sdk.BranchesApi(sdk).get_branch(REPOSITORY, "main").commit_id
    return sdk, {"repository": REPOSITORY, "branch": "main", "refType": "commit", "ref": initial}
