"""Arbitrary bytes on a slot socket (hypothesis): the executor's channel answers with a
value or a ConnectionError, never crashes the process, and valid frames still decode."""

from __future__ import annotations

import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from perago import _core

ASSIGN, STOP = 2, 4


def frame(kind: int, ident: int, payload: bytes) -> bytes:
    return b"PG" + bytes([1, kind]) + struct.pack("<IQ", len(payload), ident) + payload


def channel_fed(monkeypatch: pytest.MonkeyPatch, data: bytes) -> _core.ExecutorChannel:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        monkeypatch.setenv("PERAGO_SLOT_FD", str(os.dup(theirs.fileno())))
        monkeypatch.delenv("PERAGO_PROCESS_TITLE", raising=False)
        channel = _core.ExecutorChannel.from_env()
        ours.sendall(data)
    return channel


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_value_or_a_connection_error(data: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        channel = channel_fed(monkeypatch, data)
        try:
            message = channel.recv(timeout=0.01)
        except ConnectionError:
            return
        except OSError as exc:  # the peer closed mid-frame
            assert "mid-frame" in str(exc)
            return
        assert message is None or isinstance(message, (_core.Assign, _core.Stop))


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=300))
def test_valid_assign_then_stop_decode(dispatch_id: int, task: bytes) -> None:
    execution_id = "0123456789abcdef0123456789abcdef"
    data = frame(ASSIGN, dispatch_id, execution_id.encode() + task) + frame(
        STOP, 0, b""
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        channel = channel_fed(monkeypatch, data)
        assign = channel.recv(timeout=1)
        assert isinstance(assign, _core.Assign)
        assert (assign.dispatch_id, assign.execution_id, assign.task) == (
            dispatch_id,
            execution_id,
            task,
        )
        stop = channel.recv(timeout=1)
        assert isinstance(stop, _core.Stop) and not stop.closed
        closed = channel.recv(timeout=1)
        assert isinstance(closed, _core.Stop) and closed.closed
