"""`_core.Dispatcher` from Python: the test plays the supervisor on a control socketpair
and each executor on its slot socket (`fake_tree`)."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from perago import _core

from tests.dispatcher.fake_tree import (
    COMPLETE,
    DRAIN,
    DRAINED,
    FENCE_REPLY,
    FENCE_REQUEST,
    STOP,
    Tree,
    assigned,
    frame,
    read_frame,
)


def test_task_bytes_go_out_as_is_and_the_result_comes_back(tree: Tree) -> None:
    executor = tree.start(1, 1)
    task = b'{"taskId":"t1","inputData":{"x":1}}'
    assert tree.dispatcher.assign(task, "t1") == 1
    assert tree.dispatcher.free_slots == 0 and tree.dispatcher.leases == 1
    dispatch_id, execution_id, sent = assigned(executor)
    assert sent == task
    assert len(execution_id) == 32 and int(execution_id, 16) >= 0
    executor.sendall(frame(COMPLETE, dispatch_id, execution_id.encode() + b'{"status":"COMPLETED"}'))
    [event] = tree.events()
    assert isinstance(event, _core.TaskCompleted)
    assert (event.slot, event.task_id, event.result) == (1, "t1", b'{"status":"COMPLETED"}')
    assert tree.dispatcher.free_slots == 1


def test_a_completion_for_another_execution_is_dropped_and_logged(tree: Tree) -> None:
    executor = tree.start(1, 1)
    tree.dispatcher.assign(b"{}", "t1")
    dispatch_id, _, _ = assigned(executor)
    executor.sendall(frame(COMPLETE, dispatch_id, b"0" * 32 + b"forged"))
    [event] = tree.events()
    assert isinstance(event, _core.DispatcherLog)
    assert event.message == "dropped a completion that matches no lease"
    assert event.fields["worker_id"] == "w0001"
    assert tree.dispatcher.leases == 1


def test_a_result_written_before_a_sigkill_is_completed_not_failed(tree: Tree) -> None:
    executor = tree.start(2, 1)
    tree.dispatcher.assign(b"{}", "t1")
    dispatch_id, execution_id, _ = assigned(executor)
    executor.sendall(frame(COMPLETE, dispatch_id, execution_id.encode() + b"done"))
    executor.close()
    tree.exited(2, 1, signal=9)
    assert [type(e) for e in tree.events()] == [_core.TaskCompleted]


def test_an_executor_death_fails_its_task_at_once_naming_worker_and_signal(tree: Tree) -> None:
    executor = tree.start(2, 1)
    tree.dispatcher.assign(b"{}", "t7")
    assigned(executor)
    executor.close()
    tree.exited(2, 1, signal=9)
    [event] = tree.events()
    assert isinstance(event, _core.TaskFailed)
    assert event.task_id == "t7"
    assert event.reason == "executor process for worker w0002 exited (killed by signal 9) while running task t7"


def test_fence_reply_reaches_the_asking_generation_only(tree: Tree) -> None:
    executor = tree.start(1, 3)
    tree.dispatcher.assign(b"{}", "t1")
    dispatch_id, _, _ = assigned(executor)
    executor.sendall(frame(FENCE_REQUEST, dispatch_id, b"t1"))
    [request] = tree.events()
    assert isinstance(request, _core.FenceRequested)
    assert (request.slot, request.generation, request.task_id) == (1, 3, "t1")
    assert tree.dispatcher.fence_reply(1, 2, b"stale") is False
    assert tree.dispatcher.fence_reply(1, 3, b'{"taskId":"t1"}') is True
    assert read_frame(executor) == (FENCE_REPLY, dispatch_id, b'{"taskId":"t1"}')


def test_drain_then_stop_and_drained(tree: Tree) -> None:
    executor = tree.start(1, 1)
    tree.supervisor.sendall(frame(DRAIN, 0))
    assert [type(e) for e in tree.events()] == [_core.Drain]
    tree.dispatcher.stop_executors()
    assert read_frame(executor)[0] == STOP
    tree.dispatcher.drained()
    assert read_frame(tree.supervisor)[0] == DRAINED
    tree.supervisor.close()
    assert [type(e) for e in tree.events()] == [_core.Closed]


def test_wake_from_another_thread_ends_a_blocking_wait(tree: Tree) -> None:
    woken = threading.Timer(0.05, tree.dispatcher.wake)
    woken.start()
    assert tree.dispatcher.next_events(None) == []  # without the wake this blocks until the test timeout
    woken.join()


def test_a_negative_timeout_is_refused_naming_it(tree: Tree) -> None:
    with pytest.raises(ValueError, match="timeout must be a non-negative number of seconds, got -1"):
        tree.dispatcher.next_events(-1.0)


def test_a_bad_control_fd_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="control_fd=987654 is not an open file descriptor"):
        _core.Dispatcher(987654)


class Interrupted(Exception):
    pass


def test_a_signal_that_lands_on_another_thread_still_ends_the_wait(tree: Tree) -> None:
    """The broker's SIGTERM may be delivered to its poller or reporter threads."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    previous_handler = signal.signal(signal.SIGUSR1, handler)
    previous_fd = signal.set_wakeup_fd(tree.dispatcher.wakeup_fd, warn_on_full_buffer=False)

    def signal_this_thread() -> None:
        time.sleep(0.2)  # let the main thread get into its wait (if not, the test passes vacuously)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

    helper = threading.Thread(target=signal_this_thread)
    try:
        helper.start()
        with pytest.raises(Interrupted):
            while True:  # without the wakeup fd this blocks until the test timeout
                tree.dispatcher.next_events(None)
    finally:
        helper.join()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGUSR1, previous_handler)

