"""`LoopCalls` driven as the process-mode broker drives it: a real `_core.Dispatcher` watches
the Conductor connections, `FdReadable` goes to `on_readable`, then `run_due`; the server is
a scripted local socket server and time that matters is a fake clock the test moves."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from loguru import logger

from perago import _core
from perago.conductor.backoff import Backoff
from perago.conductor.client import ConductorClient, Delivery
from perago.conductor.errors import ConductorError, ConductorTransportError
from perago.conductor.loop_calls import LoopCalls

from .test_transport import Script, ScriptedServer

NEXT_TASK = b'{"taskId":"t-next","workflowInstanceId":"wf-2","inputData":{}}'


class StepBackoff(Backoff):
    """Deterministic retry delays: the n-th consecutive failure waits n·base seconds."""

    def delay(self, failures: int, rng: object = None) -> float:
        return self.base_seconds * failures


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loop:
    """The broker's loop in miniature around one `LoopCalls`, tracking which fds are watched."""

    def __init__(self, client: ConductorClient, clock: FakeClock) -> None:
        self.supervisor, broker_end = socket.socketpair()
        with broker_end:
            self.dispatcher = _core.Dispatcher(broker_end.fileno())
        self.watched: set[int] = set()
        self.calls = LoopCalls(client, watch=self._watch, unwatch=self._unwatch, clock=clock)

    def _watch(self, fd: int) -> None:
        assert fd not in self.watched, f"fd {fd} watched twice"
        self.watched.add(fd)
        self.dispatcher.watch_fd(fd)

    def _unwatch(self, fd: int) -> None:
        assert fd in self.watched, f"fd {fd} unwatched but not watched"
        self.watched.remove(fd)
        self.dispatcher.unwatch_fd(fd)

    def pump(self, until: Callable[[], bool], *, give_up_after: float = 5.0) -> None:
        """Run loop passes until `until()` holds (the real-time limit only stops a hung test)."""
        give_up = time.monotonic() + give_up_after
        while not until():
            assert time.monotonic() < give_up, "the loop made no progress"
            for event in self.dispatcher.next_events(0.02):
                if isinstance(event, _core.FdReadable):
                    self.calls.on_readable(event.fd)
            self.calls.run_due()


class Outcomes:
    """Every `done` call, by the key the test gave the exchange."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[Any, BaseException | None]]] = {}

    def done(self, key: str) -> Callable[[Any, BaseException | None], None]:
        self.seen[key] = []
        return lambda value, error: self.seen[key].append((value, error))

    def finished(self, *keys: str) -> Callable[[], bool]:
        return lambda: all(self.seen[key] for key in keys)

    def only(self, key: str) -> tuple[Any, BaseException | None]:
        assert len(self.seen[key]) == 1, f"done called {len(self.seen[key])} times for {key}"
        return self.seen[key][0]


class Harness:
    def __init__(self, server: ScriptedServer, **client_options: Any) -> None:
        self.server = server
        self.clock = FakeClock()
        client_options.setdefault("update_retry_backoff", StepBackoff(base_seconds=1.0, cap_seconds=60.0))
        self.client = ConductorClient(
            f"http://127.0.0.1:{server.port}/api", worker_id="w@test", request_timeout_seconds=5, **client_options
        )
        self.loop = Loop(self.client, self.clock)
        self.calls = self.loop.calls
        self.outcomes = Outcomes()
        self.abort = threading.Event()

    def deliver(self, task_id: str, *, want_next: bool = True) -> None:
        exchange = self.client.delivery_exchange(
            result_json(task_id), task_id=task_id, workflow_instance_id="wf-1", want_next=want_next, abort=self.abort
        )
        self.calls.start(exchange, self.outcomes.done(task_id))

    def delivered(self, task_id: str) -> Delivery:
        self.loop.pump(self.outcomes.finished(task_id))
        value, error = self.outcomes.only(task_id)
        assert error is None
        assert isinstance(value, Delivery)
        return value

    def close(self) -> None:
        self.abort.set()
        self.calls.close()
        self.client.close()
        self.loop.supervisor.close()


@pytest.fixture
def conductor() -> Iterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def start(script: Script, **client_options: Any) -> Harness:
        harnesses.append(Harness(ScriptedServer(script), **client_options))
        return harnesses[-1]

    yield start
    for harness in harnesses:
        harness.close()
        harness.server.close()


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    captured: list[dict[str, Any]] = []
    sink = logger.add(lambda message: captured.append(message.record), level="DEBUG")
    yield captured
    logger.remove(sink)


def messages(records: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [record for record in records if record["message"] == text]


def result_json(task_id: str) -> bytes:
    return json.dumps({"taskId": task_id, "workflowInstanceId": "wf-1", "status": "COMPLETED"}).encode()


def answer(status: int, body: bytes = b"", *, headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        headers,
        body,
    )


def target(request: bytes) -> str:
    """`POST /api/tasks/update-v2` etc., from the request line."""
    method, path, _ = request.split(b"\r\n", 1)[0].split(b" ")
    return f"{method.decode()} {path.decode()}"


def task_of(request: bytes) -> str:
    return str(json.loads(request.partition(b"\r\n\r\n")[2])["taskId"])


def header(request: bytes, name: bytes) -> bytes | None:
    for line in request.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def reset(conn: socket.socket) -> bool:
    """Close `conn` with a TCP reset instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False


# -- deliveries on keep-alive connections -------------------------------------------------------


def one_send(conn: socket.socket, raw: bytes) -> None:
    conn.sendall(raw)


def chunked(conn: socket.socket, raw: bytes) -> None:
    head, _, body = raw.partition(b"\r\n\r\n")
    head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length"))
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7))
    conn.sendall(head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\n\r\n")


def split_sends(conn: socket.socket, raw: bytes) -> None:
    """The answer in pieces cut inside the status line, the head and the body."""
    for cut in (raw[:5], raw[5:30], raw[30:-10], raw[-10:-1], raw[-1:]):
        conn.sendall(cut)
        time.sleep(0.005)


@pytest.mark.parametrize("send", [one_send, chunked, split_sends])
def test_deliveries_complete_with_the_next_task_and_reuse_one_connection(
    conductor: Callable[..., Harness], send: Callable[[socket.socket, bytes], None]
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        assert target(request) == "POST /api/tasks/update-v2"
        send(conn, answer(200, NEXT_TASK if task_of(request) == "t-1" else b""))
        return True

    harness = conductor(script)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, NEXT_TASK)
    for task_id in ("t-2", "t-3"):
        harness.deliver(task_id)
        assert harness.delivered(task_id) == Delivery(True, None)
    assert harness.server.connections == 1
    assert len(harness.calls) == 0
    assert harness.calls.next_deadline() is None


def test_an_answer_with_connection_close_is_read_and_the_next_call_connects_again(
    conductor: Callable[..., Harness],
) -> None:
    harness = conductor(lambda conn, request: one_send(conn, answer(204, headers=b"Connection: close\r\n")) or False)
    for task_id in ("t-1", "t-2"):
        harness.deliver(task_id)
        assert harness.delivered(task_id) == Delivery(True, None)
    assert harness.server.connections == 2
    assert len(harness.loop.watched) == 0


def test_without_update_v2_the_result_is_resent_on_tasks_and_later_ones_go_there_directly(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        if target(request) == "POST /api/tasks/update-v2":
            conn.sendall(answer(405, b'{"message":"Request method POST not supported"}'))
        else:
            conn.sendall(answer(200, task_of(request).encode()))
        return True

    harness = conductor(script)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, None)
    harness.deliver("t-2")
    assert harness.delivered("t-2") == Delivery(True, None)
    sent = [(target(request), task_of(request)) for request in harness.server.requests]
    assert sent == [
        ("POST /api/tasks/update-v2", "t-1"),
        ("POST /api/tasks", "t-1"),
        ("POST /api/tasks", "t-2"),
    ]
    assert not harness.client.uses_update_v2
    assert len(messages(records, "Conductor has no update-v2 endpoint; sending results with POST /tasks from now on")) == 1
    assert harness.server.connections == 1


# -- connections the server dropped ------------------------------------------------------------


@pytest.mark.parametrize("drop", ["close", "reset"])
def test_a_reused_connection_dropped_before_answering_gets_the_request_once_more_on_a_fresh_one(
    conductor: Callable[..., Harness], records: list[dict[str, Any]], drop: str
) -> None:
    answered: set[int] = set()

    def script(conn: socket.socket, request: bytes) -> bool:
        if id(conn) in answered:  # the second request on this connection: the server lets it go
            return reset(conn) if drop == "reset" else False
        answered.add(id(conn))
        conn.sendall(answer(200))
        return True

    harness = conductor(script)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, None)
    harness.deliver("t-2")
    assert harness.delivered("t-2") == Delivery(True, None)
    assert [task_of(request) for request in harness.server.requests] == ["t-1", "t-2", "t-2"]
    assert harness.server.connections == 2
    assert messages(records, "task result update failed; retrying") == []
    assert len(harness.loop.watched) == 1  # the fresh connection, kept for the next call


@pytest.mark.parametrize("descending", [False, True])
def test_idle_connections_all_closed_by_the_server_are_replaced_without_a_failed_attempt(
    conductor: Callable[..., Harness], records: list[dict[str, Any]], descending: bool
) -> None:
    """The keep-alive race on every idle connection at once (a server restart, an idle
    timeout), whatever order the loop sees the closes in: the request is sent once more on
    a new connection, not on the next stale idle one."""
    may_close, closed = threading.Event(), threading.Semaphore(0)

    def answer_then_close(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(answer(200))
        may_close.wait(5)  # once the client holds both connections idle
        conn.close()  # without `Connection: close`: the client learns it only when it reads
        closed.release()
        return False

    harness = conductor(answer_then_close)
    harness.deliver("t-1")
    harness.deliver("t-2")  # two calls at once: two connections, both idle afterwards
    harness.loop.pump(harness.outcomes.finished("t-1", "t-2"))
    idle = sorted(harness.loop.watched, reverse=descending)
    assert len(idle) == 2
    may_close.set()
    for _ in range(2):
        assert closed.acquire(timeout=5)
    ready: set[int] = set()
    give_up = time.monotonic() + 5
    while ready != set(idle) and time.monotonic() < give_up:
        ready.update(e.fd for e in harness.loop.dispatcher.next_events(0.02) if isinstance(e, _core.FdReadable))
    harness.deliver("t-3")  # sent on a stale connection: the closes are not handled yet
    for fd in idle:  # both closes handled in the same loop pass
        harness.calls.on_readable(fd)
    assert harness.delivered("t-3") == Delivery(True, None)
    assert [task_of(request) for request in harness.server.requests].count("t-3") == 1
    assert messages(records, "task result update failed; retrying") == []
    assert harness.server.connections == 3


def test_a_fresh_connection_reset_without_answer_is_a_failed_attempt_and_retried(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        if len(harness.server.requests) == 1:
            return reset(conn)
        conn.sendall(answer(200))
        return True

    harness = conductor(script)
    harness.deliver("t-1")
    harness.loop.pump(lambda: harness.calls.next_deadline() == harness.clock.now + 1.0)
    [warning] = messages(records, "task result update failed; retrying")
    assert "POST /tasks/update-v2: ConnectionResetError" in warning["extra"]["error"]
    harness.clock.now += 1.0
    assert harness.delivered("t-1") == Delivery(True, None)
    assert harness.server.connections == 2


def test_an_answer_read_to_the_close_is_complete_at_eof(conductor: Callable[..., Harness]) -> None:
    harness = conductor(lambda conn, request: one_send(conn, b"HTTP/1.0 200 OK\r\n\r\n" + NEXT_TASK) or False)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, NEXT_TASK)
    harness.deliver("t-2")
    assert harness.delivered("t-2") == Delivery(True, NEXT_TASK)
    assert harness.server.connections == 2 and harness.loop.watched == set()


def test_bytes_on_an_idle_connection_make_it_unusable(conductor: Callable[..., Harness]) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(answer(200))
        conn.sendall(b"HTTP/1.1 200 OK\r\n")  # after the answer: nobody asked for this
        return True

    harness = conductor(script)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, None)
    harness.loop.pump(lambda: not harness.loop.watched)
    harness.deliver("t-2")
    assert harness.delivered("t-2") == Delivery(True, None)
    assert harness.server.connections == 2
    # read the second connection's stray bytes too: closing it unread would reset the server's side
    harness.loop.pump(lambda: not harness.loop.watched)


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "middle of the HTTP response body"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed HTTP status line"),
    ],
)
def test_a_broken_answer_on_a_reused_connection_is_a_failed_attempt_not_a_silent_resend(
    conductor: Callable[..., Harness], records: list[dict[str, Any]], broken: bytes, error: str
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        if task_of(request) == "t-2" and len(harness.server.requests) == 2:
            conn.sendall(broken)
            return False
        conn.sendall(answer(200))
        return True

    harness = conductor(script)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, None)
    harness.deliver("t-2")
    harness.loop.pump(lambda: bool(messages(records, "task result update failed; retrying")))
    [warning] = messages(records, "task result update failed; retrying")
    assert error in warning["extra"]["error"]
    assert len(harness.server.requests) == 2
    harness.clock.now += 1.0
    assert harness.delivered("t-2") == Delivery(True, None)


# -- retries, timeouts, refusals ----------------------------------------------------------------


def test_server_errors_are_retried_after_the_backoff_pauses(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        busy = len(harness.server.requests) <= 2
        conn.sendall(answer(503, b'{"message":"busy"}') if busy else answer(200, NEXT_TASK))
        return True

    harness = conductor(script)
    clock = harness.clock
    harness.deliver("t-1")
    for attempt, pause in ((1, 1.0), (2, 2.0)):
        harness.loop.pump(lambda: len(messages(records, "task result update failed; retrying")) == attempt)
        assert harness.calls.next_deadline() == clock.now + pause
        assert harness.outcomes.seen["t-1"] == [] and len(harness.calls) == 1
        clock.now += pause / 2
        harness.calls.run_due()
        assert len(harness.server.requests) == attempt  # still pausing
        clock.now += pause / 2
    assert harness.delivered("t-1") == Delivery(True, NEXT_TASK)
    warnings = messages(records, "task result update failed; retrying")
    assert [w["extra"]["retry_in_seconds"] for w in warnings] == [1.0, 2.0]
    assert "HTTP 503: busy" in warnings[0]["extra"]["error"]
    assert harness.server.connections == 1


def test_a_refused_result_is_undeliverable_at_once(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    harness = conductor(lambda conn, request: one_send(conn, answer(400, b'{"message":"bad status"}')) or True)
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(False)
    [record] = messages(records, "task result undeliverable")
    assert record["level"].name == "ERROR"
    assert record["extra"]["task_id"] == "t-1"
    assert record["extra"]["attempts"] == 1
    assert "HTTP 400: bad status" in record["extra"]["error"]
    assert json.loads(record["extra"]["task_result"])["taskId"] == "t-1"
    assert len(harness.server.requests) == 1


def test_a_server_that_never_answers_times_the_request_out_and_it_is_retried(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        if len(harness.server.requests) > 1:
            conn.sendall(answer(200))
        return True  # the first request is never answered

    harness = conductor(script)
    clock = harness.clock
    harness.deliver("t-1")
    harness.loop.pump(lambda: len(harness.server.requests) == 1)
    assert harness.calls.next_deadline() == clock.now + 5
    clock.now += 2.5
    harness.calls.run_due()
    assert messages(records, "task result update failed; retrying") == []
    clock.now += 2.5
    harness.calls.run_due()
    [warning] = messages(records, "task result update failed; retrying")
    assert warning["extra"]["error"] == "POST /tasks/update-v2: no answer within 5s"
    assert len(harness.loop.watched) == 0  # the silent connection is closed
    assert harness.calls.next_deadline() == clock.now + 1.0
    clock.now += 1.0
    assert harness.delivered("t-1") == Delivery(True, None)
    assert harness.server.connections == 2


# -- auth ----------------------------------------------------------------------------------------


def token_server(tokens: list[bytes], accepted: bytes) -> Script:
    """`/token` hands out `tokens` in turn; updates pass only with the `accepted` token."""

    def script(conn: socket.socket, request: bytes) -> bool:
        if target(request) == "POST /api/token":
            token = tokens.pop(0)
            conn.sendall(answer(503) if token == b"503" else answer(200, b'{"token":"%s"}' % token))
        elif header(request, b"X-Authorization") == accepted:
            conn.sendall(answer(200))
        else:
            conn.sendall(answer(401, b'{"error":"EXPIRED_TOKEN","message":"Token expired"}'))
        return True

    return script


def test_an_expired_token_is_renewed_and_the_request_sent_once_more(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    harness = conductor(token_server([b"tok-1", b"tok-2"], b"tok-2"), auth_key_id="key", auth_key_secret="s3cret")
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, None)
    updates = [r for r in harness.server.requests if target(r) != "POST /api/token"]
    assert [header(r, b"X-Authorization") for r in updates] == [b"tok-1", b"tok-2"]
    assert [target(r) for r in harness.server.requests].count("POST /api/token") == 2
    assert messages(records, "task result update failed; retrying") == []
    assert all("s3cret" not in str(record) for record in records)


def test_a_token_renewal_that_fails_is_a_failed_attempt_not_an_error_out_of_the_loop(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    harness = conductor(token_server([b"tok-1", b"503", b"tok-2"], b"tok-2"), auth_key_id="key", auth_key_secret="k")
    harness.deliver("t-1")
    harness.loop.pump(lambda: bool(messages(records, "task result update failed; retrying")))
    assert "POST /token with HTTP 503" in messages(records, "task result update failed; retrying")[0]["extra"]["error"]
    harness.clock.now += 1.0
    assert harness.delivered("t-1") == Delivery(True, None)


def test_a_token_that_cannot_be_fetched_for_a_new_call_fails_that_call_only(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    harness = conductor(token_server([b"503", b"tok-1"], b"tok-1"), auth_key_id="key", auth_key_secret="k")
    harness.deliver("t-1")  # the first token fetch happens inside `start`
    assert len(messages(records, "task result update failed; retrying")) == 1
    harness.clock.now += 1.0
    assert harness.delivered("t-1") == Delivery(True, None)


def test_a_token_expired_while_the_connection_went_stale_is_still_renewed(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    """After a long idle time both happen at once: the server dropped the idle connection
    and the token expired. The stale-connection resend and the token renewal are separate
    second chances, as in the blocking transport."""
    tokens, accepted, closed = [b"tok-1", b"tok-2"], [b"tok-1"], threading.Event()

    def script(conn: socket.socket, request: bytes) -> bool:
        if target(request) == "POST /api/token":
            conn.sendall(answer(200, b'{"token":"%s"}' % tokens.pop(0)))
            return True
        if header(request, b"X-Authorization") not in accepted:
            conn.sendall(answer(401, b'{"error":"EXPIRED_TOKEN"}'))
            return True
        conn.sendall(answer(200))
        if task_of(request) == "t-1":  # then the server drops the connection and expires tok-1
            accepted[:] = [b"tok-2"]
            conn.close()
            closed.set()
            return False
        return True

    harness = conductor(script, auth_key_id="key", auth_key_secret="k")
    harness.deliver("t-1")
    assert harness.delivered("t-1") == Delivery(True, None)
    assert closed.wait(5)
    harness.deliver("t-2")  # goes out on the dropped connection
    assert harness.delivered("t-2") == Delivery(True, None)
    updates = [r for r in harness.server.requests if target(r) != "POST /api/token"]
    assert [(task_of(r), header(r, b"X-Authorization")) for r in updates] == [
        ("t-1", b"tok-1"),
        ("t-2", b"tok-1"),
        ("t-2", b"tok-2"),
    ]
    assert messages(records, "task result update failed; retrying") == []


def test_driven_blocking_a_failed_token_fetch_is_retried_too(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    """The same exchange on the calling thread (`ConductorClient.run`, thread mode) follows
    the same rule: a /token answer worth retrying is a failed attempt, not an exception."""
    harness = conductor(
        token_server([b"503", b"tok-1"], b"tok-1"),
        auth_key_id="key",
        auth_key_secret="k",
        update_retry_backoff=StepBackoff(base_seconds=0.001, cap_seconds=1.0),
    )
    delivery = harness.client.deliver_result(result_json("t-1"), task_id="t-1", workflow_instance_id="wf-1")
    assert delivery == Delivery(True, None)
    assert len(messages(records, "task result update failed; retrying")) == 1


# -- stopping ------------------------------------------------------------------------------------


def test_close_ends_every_pending_delivery_once_as_undeliverable_and_unwatches_everything(
    conductor: Callable[..., Harness], records: list[dict[str, Any]]
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        if task_of(request) == "t-busy":
            conn.sendall(answer(503))
        return True  # t-silent is never answered

    harness = conductor(script)
    harness.deliver("t-silent")
    harness.deliver("t-busy")
    harness.loop.pump(lambda: bool(messages(records, "task result update failed; retrying")))
    assert len(harness.calls) == 2 and len(harness.loop.watched) == 2
    harness.abort.set()
    harness.calls.close()
    for task_id in ("t-silent", "t-busy"):
        assert harness.outcomes.only(task_id) == (Delivery(False), None)
    undeliverable = messages(records, "task result undeliverable")
    assert sorted(record["extra"]["task_id"] for record in undeliverable) == ["t-busy", "t-silent"]
    assert all(json.loads(record["extra"]["task_result"]) for record in undeliverable)
    assert len(harness.calls) == 0
    assert harness.loop.watched == set()
    assert harness.calls.next_deadline() is None


def test_close_without_abort_still_ends_each_call_exactly_once(conductor: Callable[..., Harness]) -> None:
    harness = conductor(lambda conn, request: one_send(conn, answer(503)) or True)
    harness.deliver("t-1")
    harness.loop.pump(lambda: harness.calls.next_deadline() == harness.clock.now + 1.0)
    harness.calls.close()
    value, error = harness.outcomes.only("t-1")
    assert value is None and isinstance(error, ConductorTransportError)
    assert len(harness.calls) == 0


# -- task reloads --------------------------------------------------------------------------------


def test_task_reload_returns_the_task_or_an_error_naming_the_path(conductor: Callable[..., Harness]) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        found = target(request) == "GET /api/tasks/t-1"
        conn.sendall(answer(200, b'{"taskId":"t-1"}') if found else answer(404, b'{"message":"no such task"}'))
        return True

    harness = conductor(script)
    harness.calls.start(harness.client.get_task_exchange("t-1"), harness.outcomes.done("t-1"))
    harness.calls.start(harness.client.get_task_exchange("t/gone"), harness.outcomes.done("t/gone"))
    harness.loop.pump(harness.outcomes.finished("t-1", "t/gone"))
    assert harness.outcomes.only("t-1") == (b'{"taskId":"t-1"}', None)
    value, error = harness.outcomes.only("t/gone")
    assert value is None and isinstance(error, ConductorError)
    assert "GET /tasks/t%2Fgone with HTTP 404: no such task" in str(error)


# -- many at once --------------------------------------------------------------------------------


def test_many_concurrent_calls_each_finish_once_on_no_more_connections_than_were_busy(
    conductor: Callable[..., Harness],
) -> None:
    def script(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(answer(200, b'{"taskId":"%s"}' % task_of(request).encode()))
        return True

    harness = conductor(script)
    first = [f"a-{n}" for n in range(50)]
    for task_id in first:
        harness.deliver(task_id)
    assert len(harness.calls) == 50
    harness.loop.pump(harness.outcomes.finished(*first))
    assert harness.server.connections == 50
    second = [f"b-{n}" for n in range(30)]
    for task_id in second:
        harness.deliver(task_id)
    harness.loop.pump(harness.outcomes.finished(*second))
    for task_id in first + second:
        assert harness.outcomes.only(task_id) == (Delivery(True, b'{"taskId":"%s"}' % task_id.encode()), None)
    assert harness.server.connections == 50  # the second wave only reused idle connections
    assert len(harness.calls) == 0 and len(harness.loop.watched) == 50
