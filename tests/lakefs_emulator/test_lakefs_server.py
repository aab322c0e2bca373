"""Server-level behaviour: configuration, auth, error envelopes, hostile input, the CLI."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys

import lakefs
import lakefs_sdk
import pytest
from lakefs_sdk.client import LakeFSClient
from lakefs_helpers import api_error, commit, read, upload

from perago.testing import LakeFSEmulator


def raw_request(emulator: LakeFSEmulator, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    all_headers = dict(headers or {})
    if auth:
        token = base64.b64encode(f"{emulator.access_key_id}:{emulator.secret_access_key}".encode()).decode()
        all_headers["Authorization"] = f"Basic {token}"
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def test_config_reports_version_and_no_presign(emulator: LakeFSEmulator, sdk: LakeFSClient, client: lakefs.Client) -> None:
    config = sdk.config_api.get_config()
    assert config.version_config.version == "1.84.0"
    assert config.storage_config.pre_sign_support is False
    assert config.storage_config.blockstore_type == "local"
    status, _, body = raw_request(emulator, "GET", "/api/v1/config/version")
    assert status == 200 and json.loads(body)["version"] == "1.84.0"
    assert client.version == "1.84.0"
    assert client.storage_config.pre_sign_support is False


def test_version_is_configurable() -> None:
    with LakeFSEmulator(version="1.40.0") as old:
        env = old.env()
        client = lakefs.Client(host=env["LAKECTL_SERVER_ENDPOINT_URL"], username=env["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
                               password=env["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"])
        assert client.version == "1.40.0"


def test_env_names_the_three_lakectl_variables(emulator: LakeFSEmulator) -> None:
    env = emulator.env()
    assert env == {
        "LAKECTL_SERVER_ENDPOINT_URL": f"http://127.0.0.1:{emulator.port}",
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": emulator.access_key_id,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": emulator.secret_access_key,
    }
    assert emulator.api_url == emulator.url + "/api/v1"


def test_healthcheck_and_setup_state_need_no_credentials(emulator: LakeFSEmulator) -> None:
    status, _, _ = raw_request(emulator, "GET", "/api/v1/healthcheck", auth=False)
    assert status == 204
    status, _, body = raw_request(emulator, "GET", "/api/v1/setup_lakefs", auth=False)
    assert status == 200 and json.loads(body)["state"] == "initialized"


def test_current_user_is_the_committer(sdk: LakeFSClient, repo_name: str, emulator: LakeFSEmulator) -> None:
    assert sdk.auth_api.get_current_user().user.id == emulator.user_id
    upload(sdk, repo_name, "main", "a", b"1")
    assert commit(sdk, repo_name, "main").committer == emulator.user_id


@pytest.mark.parametrize("header", [None, "Basic " + base64.b64encode(b"AKIA:wrong").decode(), "Bearer x", "Basic !!!"])
def test_bad_credentials_get_401_with_lakefs_message(emulator: LakeFSEmulator, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    status, response_headers, body = raw_request(emulator, "GET", "/api/v1/repositories", headers=headers, auth=False)
    assert status == 401
    assert response_headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "error authenticating request"}


def test_sdk_with_wrong_secret_raises_unauthorized(emulator: LakeFSEmulator) -> None:
    wrong = LakeFSClient(lakefs_sdk.Configuration(host=emulator.api_url, username=emulator.access_key_id, password="nope"))
    error = api_error(401, wrong.repositories_api.list_repositories)
    assert json.loads(error.body) == {"message": "error authenticating request"}
    with pytest.raises(lakefs.exceptions.NotAuthorizedException):
        lakefs.Client(host=emulator.url, username="x", password="y").version


def test_unknown_paths_and_methods(emulator: LakeFSEmulator) -> None:
    status, _, body = raw_request(emulator, "GET", "/api/v1/no/such/endpoint")
    assert status == 404 and "message" in json.loads(body)
    status, _, _ = raw_request(emulator, "GET", "/not-the-api")
    assert status == 404
    status, _, body = raw_request(emulator, "PATCH", "/api/v1/repositories")
    assert status == 405 and "message" in json.loads(body)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "/api/v1/repositories", b"{not json", {"Content-Type": "application/json"}),
        ("POST", "/api/v1/repositories", b"[1, 2]", {"Content-Type": "application/json"}),
        ("POST", "/api/v1/repositories", json.dumps({"name": 7, "storage_namespace": "local://x"}).encode(), {}),
        ("POST", "/api/v1/repositories", json.dumps({"name": "UPPER", "storage_namespace": "local://x"}).encode(), {}),
        ("POST", "/api/v1/repositories", json.dumps({"name": "okname", "storage_namespace": "s3://x"}).encode(), {}),
        ("POST", "/api/v1/repositories/{repo}/branches", json.dumps({"name": "-bad", "source": "main"}).encode(), {}),
        ("POST", "/api/v1/repositories/{repo}/branches", json.dumps({"name": "ok", "source": "has space"}).encode(), {}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/commits", json.dumps({"message": 1}).encode(), {}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/commits", json.dumps({"message": "m", "metadata": {"k": 1}}).encode(), {}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/objects", b"x", {}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/objects?path=a",
         b"garbage without boundary", {"Content-Type": "multipart/form-data; boundary=zzz"}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/objects?path=a",
         b"--zzz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--zzz--\r\n",
         {"Content-Type": "multipart/form-data; boundary=zzz"}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/objects/delete", json.dumps({"paths": "a"}).encode(), {}),
        ("GET", "/api/v1/repositories/{repo}/refs/main/objects/ls?amount=abc", None, {}),
        ("GET", "/api/v1/repositories/{repo}/refs/main/objects?path=a&presign=true", None, {}),
        ("PUT", "/api/v1/repositories/{repo}/settings/branch_protection", b"{\"pattern\": \"x\"}", {}),
        ("POST", "/api/v1/repositories/{repo}/refs/main/merge/main", json.dumps({"strategy": "theirs"}).encode(), {}),
        ("POST", "/api/v1/repositories/{repo}/branches/main/revert", json.dumps({"ref": "main"}).encode(), {}),
        ("PUT", "/api/v1/repositories/{repo}/branches/main", json.dumps({"type": "sideways"}).encode(), {}),
    ],
)
def test_bad_input_is_a_400_and_the_server_keeps_serving(
    emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str, method: str, path: str, body: bytes | None,
    headers: dict[str, str],
) -> None:
    status, _, response = raw_request(emulator, method, path.format(repo=repo_name), body=body, headers=headers)
    assert status == 400, response
    assert isinstance(json.loads(response)["message"], str)
    assert sdk.repositories_api.get_repository(repo_name).id == repo_name


def test_malformed_framing_closes_only_that_connection(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    for payload in (
        b"POST /api/v1/repositories HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST /api/v1/repositories HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x00\x01garbage\r\n\r\n",
        b"GET /api/v1/repositories HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
    ):
        with socket.create_connection((emulator.host, emulator.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply == b"" or reply.startswith(b"HTTP/1.") or b'"message"' in reply
    upload(sdk, repo_name, "main", "still", b"alive")
    assert read(sdk, repo_name, "main", "still") == b"alive"


def test_cli_prints_exports_and_serves(tmp_path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "perago.testing.lakefs", "--data-dir", str(tmp_path / "data"),
         "--access-key-id", "AKIATEST", "--secret-access-key", "s3cr3t", "--version", "1.90.1"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert exports["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"] == "AKIATEST"
        assert exports["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"] == "s3cr3t"
        client = lakefs.Client(host=exports["LAKECTL_SERVER_ENDPOINT_URL"], username="AKIATEST", password="s3cr3t")
        assert client.version == "1.90.1"
        repo = lakefs.Repository("clirepo", client=client).create(storage_namespace="local://clirepo")
        repo.branch("main").object("f").upload(b"on disk")
        assert any((tmp_path / "data" / "objects").rglob("*")), "object data is stored under --data-dir"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()


def test_restart_keeps_history_when_the_data_dir_is_given(tmp_path) -> None:
    def client_of(emulator: LakeFSEmulator) -> LakeFSClient:
        return LakeFSClient(lakefs_sdk.Configuration(host=emulator.api_url, username=emulator.access_key_id,
                                                     password=emulator.secret_access_key))

    emulator = LakeFSEmulator(data_dir=tmp_path, access_key_id="AKIAKEPT", secret_access_key="kept")
    with emulator:
        sdk = client_of(emulator)
        sdk.repositories_api.create_repository(lakefs_sdk.RepositoryCreation(name="kept", storage_namespace="local://k"))
        upload(sdk, "kept", "main", "f", b"survives")
        first = commit(sdk, "kept", "main", metadata={"k": "v"})
        sdk.branches_api.create_branch("kept", lakefs_sdk.BranchCreation(name="stage", source="main", hidden=True))
        upload(sdk, "kept", "stage", "pending", b"uncommitted")
        sdk.repositories_api.set_branch_protection_rules("kept", [lakefs_sdk.BranchProtectionRule(pattern="main")])
    with emulator:  # same object
        assert read(client_of(emulator), "kept", "main", "f") == b"survives"
    with LakeFSEmulator(data_dir=tmp_path, access_key_id="AKIAKEPT", secret_access_key="kept") as fresh:  # new process
        sdk = client_of(fresh)
        assert sdk.commits_api.get_commit("kept", "main") == first
        assert read(sdk, "kept", "stage", "pending") == b"uncommitted"
        assert [b.id for b in sdk.branches_api.list_branches("kept").results] == ["main"]
        api_error(403, upload, sdk, "kept", "main", "x", b"1")
        upload(sdk, "kept", "stage", "more", b"1")
        assert commit(sdk, "kept", "stage").parents == [first.id]
    temporary = LakeFSEmulator()
    with temporary:
        data_dir = temporary.data_dir
    assert data_dir is not None and not data_dir.exists()
    with pytest.raises(RuntimeError, match="cannot restart"):
        temporary.start()
