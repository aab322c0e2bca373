"""Shared fixtures: one lakeFS emulator per test module, a fresh repository per test."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lakefs_sdk
import pytest
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime

_repo_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def lakefs() -> Iterator[Any]:
    from perago.testing.lakefs import LakeFSEmulator

    with LakeFSEmulator() as emulator:
        yield emulator


@dataclass
class Repo:
    """A repository on the emulator plus a raw SDK client playing "everyone else"."""

    name: str
    sdk: lakefs_sdk.ApiClient
    client: LakeFSClient
    initial: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def commit_files(
        self, branch: str, files: dict[str, bytes | None], *, message: str = "seed",
        metadata: dict[str, str] | None = None, content_type: str = "application/octet-stream",
    ) -> str:
        objects = lakefs_sdk.ObjectsApi(self.sdk)
        for key, content in files.items():
            if content is None:
                objects.delete_object(self.name, branch, key)
            else:
                self._raw_upload(branch, key, content, content_type)
        commit = lakefs_sdk.CommitsApi(self.sdk).commit(
            self.name, branch, lakefs_sdk.CommitCreation(message=message, metadata=metadata or {})
        )
        return commit.id

    def _raw_upload(self, branch: str, key: str, content: bytes, content_type: str) -> None:
        source = Path(self.extra["scratch"]) / uuid.uuid4().hex
        source.write_bytes(content)
        self.client.upload_object(
            self.name, branch, key, source, len(content), content_type=content_type,
            metadata={"origin": "seed"},
        )
        source.unlink()

    def tree(self, ref: str) -> dict[str, bytes]:
        objects = lakefs_sdk.ObjectsApi(self.sdk)
        keys = [item.key for item in self.client.list_objects(self.name, ref, "")]
        return {key: bytes(objects.get_object(self.name, ref, key)) for key in keys}

    def stats(self, ref: str) -> dict[str, Any]:
        return {item.key: item for item in self.client.list_objects(self.name, ref, "")}

    def head(self, branch: str = "main") -> Any:
        return self.client.get_commit(self.name, branch)

    def branches(self) -> list[str]:
        return [name for name, _ in self.client.list_branches(self.name, "")]

    def create_branch(self, name: str, source: str) -> None:
        self.client.create_branch(self.name, name, source, hidden=False)


@pytest.fixture()
def repo(lakefs: Any, tmp_path: Path) -> Repo:
    return make_repo(lakefs, tmp_path)


def make_repo(lakefs: Any, tmp_path: Path) -> Repo:
    """A fresh repository whose `main` holds a small seeded tree at `initial`."""
    name = f"repo-{next(_repo_numbers)}-{uuid.uuid4().hex[:6]}"
    configuration = lakefs_sdk.Configuration(
        host=lakefs.api_url, username=lakefs.access_key_id, password=lakefs.secret_access_key
    )
    sdk = lakefs_sdk.ApiClient(configuration)
    lakefs_sdk.RepositoriesApi(sdk).create_repository(
        lakefs_sdk.RepositoryCreation(name=name, storage_namespace=f"local://{name}", default_branch="main")
    )
    client = LakeFSClient(lakefs.url, lakefs.access_key_id, lakefs.secret_access_key)
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    made = Repo(name=name, sdk=sdk, client=client, extra={"scratch": scratch})
    made.initial = made.commit_files(
        "main",
        {
            "data/keep.txt": b"keep",
            "data/edit.txt": b"before",
            "data/drop.txt": b"drop",
            "data/sub/deep.bin": bytes(range(256)) * 64,
            "other/outside.txt": b"outside the prefix",
        },
        content_type="text/plain",
    )
    return made


@pytest.fixture()
def runtime(lakefs: Any) -> LakeFSWorkspaceRuntime:
    client = LakeFSClient(lakefs.url, lakefs.access_key_id, lakefs.secret_access_key)
    return LakeFSWorkspaceRuntime(client, concurrency=4)


_task_numbers = itertools.count(1)


def attempt_snapshot(
    *, workflow: str = "wf-1", ref_name: str = "render", task_id: str | None = None, retry: int = 0
) -> SimpleNamespace:
    return SimpleNamespace(
        workflow_instance_id=workflow,
        reference_task_name=ref_name,
        seq=3 + retry,  # Conductor gives each retry the workflow's next seq
        iteration=0,
        task_id=task_id or f"task-{next(_task_numbers)}",
        retry_count=retry,
        task_def_name="render_task",
        status="IN_PROGRESS",
    )
