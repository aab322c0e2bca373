"""One emulator per test module; every test gets its own repository, so tests stay independent."""

from __future__ import annotations

import itertools
from typing import Iterator

import lakefs
import lakefs_sdk
import pytest
from lakefs_sdk.client import LakeFSClient

from perago.testing import LakeFSEmulator

_names = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[LakeFSEmulator]:
    with LakeFSEmulator() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emulator" in request.fixturenames:
        emu = request.getfixturevalue("emulator")
        emu.faults.clear()
        emu.pre_merge_hook = None


@pytest.fixture(scope="module")
def sdk(emulator: LakeFSEmulator) -> LakeFSClient:
    """The generated lakefs-sdk client, configured the way perago configures it."""
    return LakeFSClient(
        lakefs_sdk.Configuration(
            host=emulator.api_url, username=emulator.access_key_id, password=emulator.secret_access_key
        )
    )


@pytest.fixture(scope="module")
def client(emulator: LakeFSEmulator) -> lakefs.Client:
    """The high-level lakefs client, given the endpoint exactly as LAKECTL_SERVER_ENDPOINT_URL holds it."""
    env = emulator.env()
    return lakefs.Client(
        host=env["LAKECTL_SERVER_ENDPOINT_URL"],
        username=env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        password=env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def repo_name(sdk: LakeFSClient) -> str:
    """A fresh repository with default branch `main`."""
    name = f"repo-{next(_names)}"
    sdk.repositories_api.create_repository(
        lakefs_sdk.RepositoryCreation(name=name, storage_namespace=f"local://{name}", default_branch="main")
    )
    return name


@pytest.fixture
def repo(client: lakefs.Client, repo_name: str) -> lakefs.Repository:
    return lakefs.Repository(repo_name, client=client)

