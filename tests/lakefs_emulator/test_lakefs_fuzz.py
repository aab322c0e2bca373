"""Arbitrary requests get a lakeFS-shaped answer (never a 500 from a crash) and the server survives."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perago.testing import LakeFSEmulator

TEMPLATES = [
    ("GET", "/repositories/{r}/refs/{a}/objects?path={p}"),
    ("HEAD", "/repositories/{r}/refs/{a}/objects?path={p}"),
    ("GET", "/repositories/{r}/refs/{a}/objects/ls?prefix={p}&after={b}&amount={n}&delimiter={d}"),
    ("GET", "/repositories/{r}/refs/{a}/objects/stat?path={p}"),
    ("POST", "/repositories/{r}/branches/{a}/objects?path={p}"),
    ("DELETE", "/repositories/{r}/branches/{a}/objects?path={p}"),
    ("POST", "/repositories/{r}/branches/{a}/objects/delete"),
    ("POST", "/repositories/{r}/branches/{a}/objects/copy?dest_path={p}"),
    ("GET", "/repositories/{r}/branches/{a}/diff?amount={n}&after={b}"),
    ("GET", "/repositories/{r}/refs/{a}/diff/{b}?type={d}"),
    ("POST", "/repositories"),
    ("GET", "/repositories?amount={n}&after={b}"),
    ("GET", "/repositories/{r}"),
    ("POST", "/repositories/{r}/branches"),
    ("GET", "/repositories/{r}/branches?amount={n}&after={b}&show_hidden={d}"),
    ("GET", "/repositories/{r}/branches/{a}"),
    ("DELETE", "/repositories/{r}/branches/{a}?force={d}"),
    ("PUT", "/repositories/{r}/branches/{a}"),
    ("PUT", "/repositories/{r}/branches/{a}/hard_reset?ref={b}"),
    ("POST", "/repositories/{r}/branches/{a}/commits"),
    ("POST", "/repositories/{r}/branches/{a}/revert"),
    ("POST", "/repositories/{r}/branches/{a}/cherry-pick"),
    ("GET", "/repositories/{r}/commits/{a}"),
    ("GET", "/repositories/{r}/refs/{a}/commits?amount={n}&after={b}&objects={p}&stop_at={b}"),
    ("POST", "/repositories/{r}/refs/{a}/merge/{b}"),
    ("GET", "/repositories/{r}/refs/{a}/merge/{b}"),
    ("POST", "/repositories/{r}/tags"),
    ("PUT", "/repositories/{r}/settings/branch_protection"),
    ("POST", "/repositories/{r}/metadata"),
]

names = st.sampled_from(["fuzz", "main", "nope", "main~1", "main^2", "main$", "main@", "a b", "", "..", "%00", "é", "0" * 64])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
body_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": names, "source": names, "ref": names, "message": json_values, "metadata": json_values,
        "paths": json_values, "parent_number": json_values, "strategy": json_values, "squash_merge": json_values,
        "allow_empty": json_values, "type": st.sampled_from(["reset", "object", "common_prefix", "x", 3]),
        "storage_namespace": st.sampled_from(["local://fuzz", "s3://x", 1]), "id": names, "src_path": names,
        "commit_overrides": json_values, "hidden": json_values, "force": json_values, "date": json_values,
    },
)


@pytest.fixture(scope="module")
def fuzz_target(emulator: LakeFSEmulator) -> Iterator[LakeFSEmulator]:
    conn = _connect(emulator)
    conn.request("POST", "/api/v1/repositories", body=json.dumps({"name": "fuzz", "storage_namespace": "local://fuzz"}),
                 headers=_auth(emulator))
    response = conn.getresponse()
    assert response.status == 201, response.read()
    conn.close()
    yield emulator


def _connect(emulator: LakeFSEmulator) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)


def _auth(emulator: LakeFSEmulator) -> dict[str, str]:
    token = base64.b64encode(f"{emulator.access_key_id}:{emulator.secret_access_key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    template=st.sampled_from(TEMPLATES),
    r=st.sampled_from(["fuzz", "nope", "BAD"]),
    a=names, b=names, p=names, d=st.sampled_from(["", "/", "true", "two_dot", "x"]),
    n=st.sampled_from(["", "0", "-1", "1", "1001", "x"]),
    body=st.one_of(body_fields.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)),
)
def test_any_request_gets_an_answer_and_no_crash(
    fuzz_target: LakeFSEmulator, template: tuple[str, str], r: str, a: str, b: str, p: str, d: str, n: str, body: bytes
) -> None:
    method, path = template
    q = {k: quote(v, safe="") for k, v in dict(r=r, a=a, b=b, p=p, d=d, n=n).items()}
    conn = _connect(fuzz_target)
    conn.request(method, "/api/v1" + path.format(**q), body=body, headers=_auth(fuzz_target))
    response = conn.getresponse()
    data = response.read()
    conn.close()
    assert response.status < 500 or (response.status == 500 and b"staging area with $" in data), (response.status, data)
    if data and response.getheader("Content-Type") == "application/json" and response.status >= 400:
        assert isinstance(json.loads(data), dict)
