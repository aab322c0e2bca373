"""A fake supervisor and its executors around one `_core.Dispatcher`, speaking raw frames
(rust/src/frame.rs layout) on real socketpairs."""

from __future__ import annotations

import socket
import struct

from perago import _core

READY, ASSIGN, COMPLETE, STOP, FENCE_REQUEST, FENCE_REPLY = 1, 2, 3, 4, 5, 6
SLOT_SOCKET, EXECUTOR_EXITED, DRAIN, DRAINED = 16, 17, 18, 19


def frame(kind: int, ident: int, payload: bytes = b"") -> bytes:
    return b"PG" + bytes([1, kind]) + struct.pack("<IQ", len(payload), ident) + payload


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    header = _read_exactly(sock, 16)
    assert header[:3] == b"PG\x01"
    length, ident = struct.unpack("<IQ", header[4:])
    return header[3], ident, _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "socket closed mid-frame"
        data += chunk
    return data


class Tree:
    """A fake supervisor and its executors around one dispatcher."""

    def __init__(self) -> None:
        self.supervisor, broker_end = socket.socketpair()
        self.sockets = [self.supervisor]
        with broker_end:
            self.dispatcher = _core.Dispatcher(broker_end.fileno())

    def start(self, slot: int, generation: int) -> socket.socket:
        broker_end, executor = socket.socketpair()
        self.sockets.append(executor)
        with broker_end:
            payload = struct.pack("<II", slot, generation) + f"w{slot:04d}".encode()
            socket.send_fds(self.supervisor, [frame(SLOT_SOCKET, slot, payload)], [broker_end.fileno()])
        executor.sendall(frame(READY, generation))
        assert any(isinstance(e, _core.SlotReady) and e.slot == slot for e in self.events())
        return executor

    def exited(self, slot: int, generation: int, *, signal: int) -> None:
        payload = struct.pack("<IIBi", slot, generation, 1, signal) + f"w{slot:04d}".encode()
        self.supervisor.sendall(frame(EXECUTOR_EXITED, slot, payload))

    def events(self) -> list[object]:
        """Everything the dispatcher reports until it has been quiet twice in a row."""
        seen: list[object] = []
        quiet = 0
        while quiet < 2:
            batch = self.dispatcher.next_events(0.02)
            quiet = 0 if batch else quiet + 1
            seen.extend(batch)
        return seen


def assigned(executor: socket.socket) -> tuple[int, str, bytes]:
    kind, dispatch_id, payload = read_frame(executor)
    assert kind == ASSIGN
    return dispatch_id, payload[:32].decode(), payload[32:]
