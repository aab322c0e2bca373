"""Bad input gets the answer a real server gives (spec §1.1), and never takes the server down."""

from __future__ import annotations

import re
import socket

from conductor_rest import Api, fast_taskdef
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perago.testing.conductor import ConductorEmulator

PYTHON_ERRORS = ("TypeError", "KeyError", "AttributeError", "ValueError", "IndexError", "AssertionError")


def test_malformed_json_is_500_json_parse_error(api: Api) -> None:
    answer = api.client.post("/tasks", content=b'{"taskId": ', headers={"Content-Type": "application/json"})
    assert answer.status_code == 500
    body = answer.json()
    assert body["message"].startswith("JSON parse error")
    assert body["retryable"] is False and body["status"] == 500


def test_missing_body_is_500(api: Api) -> None:
    answer = api.client.post("/tasks", headers={"Content-Type": "application/json"})
    assert answer.status_code == 500
    assert answer.json()["message"].startswith("Required request body is missing")


def test_wrong_json_types_are_500(api: Api) -> None:
    assert api.client.post("/tasks", json=[1, 2]).status_code == 500
    assert (
        api.client.post(
            "/tasks", json={"taskId": "t", "workflowInstanceId": "w", "status": "COMPLETED", "outputData": [1]}
        ).status_code
        == 500
    )
    assert api.client.post("/metadata/taskdefs", json={"name": "not-a-list"}).status_code == 500


def test_missing_status_is_500(api: Api) -> None:
    api.register_taskdefs(fast_taskdef("a"))
    api.chain("wf", "a")
    api.start("wf")
    task = api.poll_one("a")
    answer = api.client.post("/tasks", json={"taskId": task["taskId"], "workflowInstanceId": task["workflowInstanceId"]})
    assert answer.status_code == 500
    assert api.task(task["taskId"])["status"] == "IN_PROGRESS"


def test_bad_query_parameter_type_is_500(api: Api) -> None:
    answer = api.batch_poll("a", count="abc")  # type: ignore[arg-type]
    assert answer.status_code == 500
    assert "Failed to convert value" in answer.json()["message"]


def test_unknown_path_is_404_with_error_body(api: Api) -> None:
    answer = api.client.get("/xyz")
    assert answer.status_code == 404
    assert answer.json()["message"] == "No static resource api/xyz."


def test_unknown_task_get_is_404(api: Api) -> None:
    answer = api.client.get("/tasks/ghost")
    assert answer.status_code == 404
    assert answer.json()["message"] == "Task not found for taskId: ghost"


def test_garbage_bytes_do_not_kill_the_server(conductor: ConductorEmulator, api: Api) -> None:
    for garbage in (
        b"\x00\xff\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / SPDY/9\r\n\r\n",
        b"POST /api/tasks HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ):
        with socket.create_connection((conductor.host, conductor.port), timeout=5) as raw:
            raw.sendall(garbage)
            assert raw.recv(100).startswith(b"HTTP/1.1 400")
    assert api.client.get("/tasks/poll/batch/a").status_code == 200


def test_pipelined_and_chunked_requests(conductor: ConductorEmulator) -> None:
    chunked = b'POST /api/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"ta\r\n3\r\nsk"\r\n0\r\n\r\n'
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((conductor.host, conductor.port), timeout=5) as raw:
        raw.sendall(health + chunked + health)
        received = b""
        while received.count(b"HTTP/1.1") < 3:
            received += raw.recv(65536)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", received)
    assert statuses == [b"200", b"500", b"200"]  # in request order; the half-JSON body is a parse error


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        ).map(lambda value: __import__("json").dumps(value).encode()),
    )
)
def test_arbitrary_bodies_get_an_answer_never_a_crash(api: Api, body: bytes) -> None:
    for path in ("/tasks", "/tasks/update-v2", "/metadata/taskdefs", "/metadata/workflow", "/workflow", "/workflow/x"):
        answer = api.client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code in (200, 204, 400, 404, 409, 500), (path, body, answer.status_code)
        if answer.status_code >= 400:
            error = answer.json()
            assert error["status"] == answer.status_code
            assert not error.get("message", "").startswith(PYTHON_ERRORS), error  # an emulator bug, not a server answer
    assert api.batch_poll("x", timeout=0).status_code == 200


def test_head_is_answered_like_get_without_body(api: Api) -> None:
    answer = api.client.head("/metadata/taskdefs/ghost")
    assert answer.status_code == 404 and answer.content == b""
    assert int(answer.headers["content-length"]) > 0
    assert api.client.head("/metadata/taskdefs").status_code == 200


def test_head_on_a_long_poll_has_no_body(api: Api) -> None:
    answer = api.client.head("/tasks/poll/batch/a", params={"timeout": 50})
    assert answer.status_code == 200 and answer.content == b""
    assert api.batch_poll("a").status_code == 200  # the connection is still in step
