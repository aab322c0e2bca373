"""The dispatcher's result relay from Python: a completion is sent to a real loopback HTTP
server with update-v2, and the broker hears `TaskRelayed` — or, when that first try did not
deliver, the usual `TaskCompleted` with the bytes unchanged."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from perago import _core

from tests.dispatcher.fake_tree import COMPLETE, Tree, assigned, frame

RESULT = b'{"taskId":"t1","workflowInstanceId":"w1","status":"COMPLETED","outputData":{}}'
NEXT = b'{"taskId":"t2","workflowInstanceId":"w2","responseTimeoutSeconds":600,"inputData":{"x":1}}'


class Server:
    """Answers each request with the next scripted answer once `release` is set."""

    def __init__(self, answers: list[bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answers = answers
        self.requests: list[bytes] = []
        self.release = threading.Event()
        self.release.set()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:  # closed by `close()` before anyone connected
            return
        with connection:
            for answer in self.answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                self.release.wait(10)
                connection.sendall(answer)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(10)

    def head(self) -> bytes:
        return f"POST /api/tasks/update-v2 HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Length: ".encode()


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def serve() -> Iterator[Callable[[list[bytes]], Server]]:
    servers: list[Server] = []

    def start(answers: list[bytes]) -> Server:
        servers.append(Server(answers))
        return servers[-1]

    yield start
    for server in servers:
        server.release.set()
        server.close()


def complete_one(tree: Tree, executor: socket.socket) -> None:
    assert tree.dispatcher.assign(b'{"taskId":"t1"}', "t1") is not None
    dispatch_id, execution_id, _ = assigned(executor)
    executor.sendall(frame(COMPLETE, dispatch_id, execution_id.encode() + RESULT))


def test_a_delivered_result_puts_the_handed_back_task_on_the_freed_slot(tree: Tree, serve: Callable[[list[bytes]], Server]) -> None:
    server = serve([ok(NEXT)])
    executor = tree.start(1, 1)
    tree.dispatcher.start_relay("127.0.0.1", server.port, server.head(), 5.0)
    complete_one(tree, executor)
    [event] = tree.events()
    assert isinstance(event, _core.TaskRelayed)
    assert (event.task_id, event.next_task_id, event.next_workflow_instance_id) == ("t1", "t2", "w2")
    assert (event.next_response_timeout, event.next_task) == (600.0, None)
    assert server.requests[0].endswith(b"Content-Length: %d\r\n\r\n%s" % (len(RESULT), RESULT))
    _, _, task = assigned(executor)
    assert task == NEXT
    assert tree.dispatcher.leases == 1 and tree.dispatcher.relay_in_flight == 0


def test_a_result_conductor_refuses_comes_back_unchanged_and_frees_the_slot(tree: Tree, serve: Callable[[list[bytes]], Server]) -> None:
    server = serve([b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"])
    executor = tree.start(1, 1)
    tree.dispatcher.start_relay("127.0.0.1", server.port, server.head(), 5.0)
    complete_one(tree, executor)
    [event] = tree.events()
    assert isinstance(event, _core.TaskCompleted)
    assert (event.task_id, event.result) == ("t1", RESULT)
    assert tree.dispatcher.free_slots == 1


def test_the_slot_stays_reserved_while_the_update_is_in_flight(tree: Tree, serve: Callable[[list[bytes]], Server]) -> None:
    server = serve([ok(b"")])
    server.release.clear()
    executor = tree.start(1, 1)
    tree.dispatcher.start_relay("127.0.0.1", server.port, server.head(), 5.0)
    complete_one(tree, executor)
    assert tree.events() == []
    # Neither free (the poller would ask for a task the answer may bring) nor leased.
    assert (tree.dispatcher.free_slots, tree.dispatcher.leases, tree.dispatcher.relay_in_flight) == (0, 0, 1)
    server.release.set()
    [event] = tree.events()
    assert isinstance(event, _core.TaskRelayed) and event.next_task_id is None
    assert tree.dispatcher.free_slots == 1


def test_a_handed_back_task_with_no_slot_left_goes_to_the_broker(tree: Tree, serve: Callable[[list[bytes]], Server]) -> None:
    server = serve([ok(NEXT)])
    server.release.clear()
    executor = tree.start(1, 1)
    tree.dispatcher.start_relay("127.0.0.1", server.port, server.head(), 5.0)
    complete_one(tree, executor)
    assert tree.events() == []
    executor.close()
    tree.exited(1, 1, signal=9)  # the executor died while its result was on the way
    server.release.set()
    [event] = tree.events()
    assert isinstance(event, _core.TaskRelayed)
    assert (event.next_task_id, event.next_task) == ("t2", NEXT)


def test_after_stop_relay_completions_go_to_the_broker(tree: Tree, serve: Callable[[list[bytes]], Server]) -> None:
    server = serve([ok(NEXT)])
    executor = tree.start(1, 1)
    tree.dispatcher.start_relay("127.0.0.1", server.port, server.head(), 5.0)
    tree.dispatcher.stop_relay()
    complete_one(tree, executor)
    [event] = tree.events()
    assert isinstance(event, _core.TaskCompleted) and event.result == RESULT
    assert server.requests == []


def test_an_unreachable_server_hands_the_completion_back(tree: Tree) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    executor = tree.start(1, 1)
    head = f"POST /api/tasks/update-v2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: ".encode()
    tree.dispatcher.start_relay("127.0.0.1", port, head, 5.0)
    complete_one(tree, executor)
    [event] = tree.events()
    assert isinstance(event, _core.TaskCompleted) and event.result == RESULT


def test_start_relay_refuses_a_head_without_the_length_header(tree: Tree) -> None:
    with pytest.raises(ValueError, match="head must end with 'Content-Length: '"):
        tree.dispatcher.start_relay("127.0.0.1", 80, b"POST / HTTP/1.1\r\n\r\n", 5.0)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        tree.dispatcher.start_relay("127.0.0.1", 80, b"Content-Length: ", 0.0)
