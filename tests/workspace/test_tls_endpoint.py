"""Workspace attempts against lakeFS behind TLS, as production reaches it.

Every other workspace test talks plain HTTP to the emulator; here a TLS-terminating relay
with a self-signed certificate sits in front of it, and the client trusts that certificate
the way a user would, through `SSL_CERT_FILE`. Both of perago's lakeFS paths go over it:
the SDK (urllib3) for listings, commits and merges, `object_http` for object bodies.
"""

from __future__ import annotations

import base64
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from perago.workspace.errors import LakeFSError
from perago.workspace.identity import KIND, KIND_PUBLICATION
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime

from .conftest import Repo
from .test_attempt_emulator import EDITED, edit, run, staging_branches
from .tls_proxy import CloseStyle, TlsProxy, make_certificate

BIG = random.Random(7).randbytes(1_500_000)  # over the 1 MiB transfer buffer
LARGE_NEW = random.Random(8).randbytes(3 << 20)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make the test certificates")
    trusted, key = make_certificate(tmp_path_factory.mktemp("trusted"))
    stranger, _ = make_certificate(tmp_path_factory.mktemp("stranger"))
    return {"cert": trusted, "key": key, "stranger": stranger}


@pytest.fixture(scope="module")
def proxy(lakefs: Any, certificates: dict[str, Path]) -> Iterator[TlsProxy]:
    with TlsProxy(certificates["cert"], certificates["key"], (lakefs.host, lakefs.port)) as relay:
        yield relay


def https_client(lakefs: Any, proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> LakeFSClient:
    """A client of the https endpoint trusting only the certificates in `ca_file`."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return LakeFSClient(proxy.url, lakefs.access_key_id, lakefs.secret_access_key)


@pytest.fixture()
def client(lakefs: Any, proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch, certificates: dict[str, Path]) -> LakeFSClient:
    return https_client(lakefs, proxy, monkeypatch, certificates["cert"])


def download(client: LakeFSClient, repo: Repo, ref: str, key: str) -> bytes:
    with tempfile.TemporaryFile() as target:
        received = client.download_object(repo.name, ref, key, target.fileno(), md5=False)
        target.seek(0)
        content = target.read()
    assert received.size == len(content)
    return content


def test_a_user_supplied_ca_is_trusted_by_sdk_calls_and_object_transfers(
    repo: Repo, client: LakeFSClient, proxy: TlsProxy
) -> None:
    before = proxy.accepted
    assert client.get_commit(repo.name, "main").id == repo.initial, "SDK (urllib3) call over https"
    assert download(client, repo, repo.initial, "data/keep.txt") == b"keep", "object_http over https"
    assert proxy.accepted == before + 2, "each went through the TLS relay on its own connection"


def test_attempt_over_https_publishes_one_commit_with_the_expected_tree(
    repo: Repo, client: LakeFSClient, proxy: TlsProxy, tmp_path: Path
) -> None:
    input_ref = repo.commit_files("main", {"data/big.bin": BIG})
    runtime = LakeFSWorkspaceRuntime(client, concurrency=4, object_cache=False)
    seen: dict[str, bytes] = {}

    def body(root: Path) -> None:
        seen.update({name: (root / name).read_bytes() for name in ("big.bin", "sub/deep.bin", "keep.txt")})
        edit(root)
        (root / "new" / "large.bin").write_bytes(LARGE_NEW)

    before = proxy.accepted
    ref = run(repo, runtime, tmp_path, body, ref=input_ref)
    assert proxy.accepted > before
    assert seen == {"big.bin": BIG, "sub/deep.bin": EDITED["data/sub/deep.bin"], "keep.txt": b"keep"}
    head = repo.head()
    assert head.id == ref
    assert head.parents == (input_ref,)
    assert head.metadata[KIND] == KIND_PUBLICATION
    assert repo.tree(ref) == {**EDITED, "data/big.bin": BIG, "data/new/large.bin": LARGE_NEW}
    assert staging_branches(repo) == []


def test_no_op_attempt_over_https_keeps_the_input_ref(
    repo: Repo, client: LakeFSClient, proxy: TlsProxy, tmp_path: Path
) -> None:
    input_ref = repo.commit_files("main", {"data/big.bin": BIG})
    runtime = LakeFSWorkspaceRuntime(client, concurrency=4, object_cache=False)
    seen: list[bytes] = []

    def body(root: Path) -> None:
        seen.append((root / "big.bin").read_bytes())
        (root / "edit.txt").write_bytes(b"before")  # rewritten with the same content

    before = proxy.accepted
    assert run(repo, runtime, tmp_path, body, ref=input_ref) == input_ref
    assert proxy.accepted > before
    assert seen == [BIG]
    assert repo.head().id == input_ref
    assert staging_branches(repo) == []


def test_an_untrusted_certificate_fails_with_a_readable_error_and_no_secret(
    lakefs: Any, repo: Repo, proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch, certificates: dict[str, Path]
) -> None:
    client = https_client(lakefs, proxy, monkeypatch, certificates["stranger"])
    credentials = f"{lakefs.access_key_id}:{lakefs.secret_access_key}".encode()
    secrets = (lakefs.secret_access_key, base64.b64encode(credentials).decode())
    with pytest.raises(LakeFSError) as download_failure:
        download(client, repo, repo.initial, "data/keep.txt")
    with pytest.raises(LakeFSError) as sdk_failure:
        client.get_commit(repo.name, repo.initial)
    for failure in (download_failure.value, sdk_failure.value):
        message = str(failure)
        assert failure.status is None
        assert "certificate verify failed: self-signed certificate" in message, message
        assert not any(secret in message for secret in secrets)
    assert str(download_failure.value).startswith(f"lakeFS download 'data/keep.txt' from {repo.initial!r}")
    causes = {str(failure.value).split("(transport error): ", 1)[1] for failure in (download_failure, sdk_failure)}
    assert len(causes) == 1, "the SDK's failure names the same cause as the object client's, unwrapped"



@pytest.mark.parametrize("style", ["close_notify", "fin", "reset"])
def test_an_idle_connection_closed_by_the_server_is_replaced(
    repo: Repo, client: LakeFSClient, proxy: TlsProxy, tmp_path: Path, style: CloseStyle
) -> None:
    before = proxy.accepted
    assert download(client, repo, repo.initial, "data/keep.txt") == b"keep"
    assert download(client, repo, repo.initial, "data/edit.txt") == b"before"
    assert proxy.accepted == before + 1, "the second download reuses the kept-alive TLS connection"

    proxy.drop_connections(style)
    assert download(client, repo, repo.initial, "data/drop.txt") == b"drop"
    assert proxy.accepted == before + 2

    proxy.drop_connections(style)
    source = tmp_path / "upload.bin"
    source.write_bytes(BIG)
    client.upload_object(repo.name, "main", "data/uploaded.bin", source, len(BIG), content_type=None, metadata={})
    assert proxy.accepted == before + 3
    assert download(client, repo, "main", "data/uploaded.bin") == BIG


@pytest.mark.parametrize("style", ["close_notify", "fin", "reset"])
def test_sdk_calls_survive_idle_connections_closed_by_the_server(
    repo: Repo, client: LakeFSClient, proxy: TlsProxy, style: CloseStyle
) -> None:
    assert client.get_commit(repo.name, "main").id == repo.initial
    proxy.drop_connections(style)
    assert client.get_commit(repo.name, "main").id == repo.initial
    proxy.drop_connections(style)
    client.create_branch(repo.name, "after-idle", repo.initial, hidden=False)  # a POST urllib3 never resends
    assert "after-idle" in repo.branches()
