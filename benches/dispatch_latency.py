"""Dispatcher round trip (Assign -> Complete, no Conductor) at -j 8: perago's Rust
dispatcher next to the `multiprocessing.Pipe` equivalent perago 0.6.1 is built on.

Both columns send the same task JSON and result bytes and time each task from the moment
the broker hands it over to the moment the broker holds its result, in two loads:

  1 in flight   -j executors connected, one task at a time: the dispatch path itself;
  all busy      every executor busy (closed loop: a slot gets its next task as soon as
                its result is in): on a machine with fewer cores than executors this is
                mostly waiting for a core, so read it as a throughput-under-load ratio;
  broker side   no executor processes: the bench answers each task itself on the other
                end of the socket, so the figure is the broker's own CPU cost per task
                (hand over + take the result), free of process wake-ups.

  perago  `_core.Dispatcher.assign(task, task_id)` ... `next_events()` returns the
          `TaskCompleted`; the executors are `python -c` processes on `_core.ExecutorChannel`
          (recv the Assign, send the Complete) and get their sockets the way
          `perago start` hands them over (SCM_RIGHTS on the control socket);
  Pipe    `conn.send_bytes(execution id + task)` ... `multiprocessing.connection.wait`
          then `recv_bytes` with the execution id checked in Python; the executors are
          forked processes looping `recv_bytes` / `send_bytes`.

Goals: perago p50 <= 20 us, p99 <= 100 us. The figures include the OS scheduler, so run
on an otherwise idle machine and read the ratio first. Build the core with optimisations
(`maturin develop --release`); `make dev` builds a debug core, several times slower here.

    .venv/bin/python benches/dispatch_latency.py [--jobs 8] [--tasks 20000] [--warmup 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from multiprocessing.connection import Connection, wait

from perago import _core

TASK = (
    b'{"taskType":"noop","status":"IN_PROGRESS","inputData":{"x":1,"name":"bench"},'
    b'"referenceTaskName":"noop_ref","retryCount":0,"seq":1,"pollCount":1,"taskDefName":"noop",'
    b'"scheduledTime":1764460800000,"startTime":1764460800001,"endTime":0,"updateTime":1764460800001,'
    b'"startDelayInSeconds":0,"retried":false,"executed":false,"callbackFromWorker":true,'
    b'"responseTimeoutSeconds":3600,"workflowInstanceId":"5b7e6a0e-3c1f-4f7e-9a59-0d6c1f1f3e21",'
    b'"workflowType":"bench","taskId":"TASK_ID_PLACEHOLDER_0000000000000000","callbackAfterSeconds":0,'
    b'"workerId":"bench-host","rateLimitPerFrequency":0,"rateLimitFrequencyInSeconds":1,'
    b'"workflowPriority":0,"iteration":0,"queueWaitTime":1,"loopOverTask":false}'
)
RESULT = (
    b'{"workflowInstanceId":"5b7e6a0e-3c1f-4f7e-9a59-0d6c1f1f3e21","taskId":"TASK_ID_PLACEHOLDER",'
    b'"workerId":"bench-host","status":"COMPLETED","outputData":{"result":2},"logs":[]}'
)

EXECUTOR = f"""
from perago import _core
channel = _core.ExecutorChannel.from_env()
channel.ready()
result = {RESULT!r}
while True:
    message = channel.recv(None)
    if isinstance(message, _core.Stop):
        break
    if message is not None:
        channel.complete(message.dispatch_id, message.execution_id, result)
"""

SLOT_SOCKET = 16


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000


def control_frame(slot: int, generation: int, worker_id: str) -> bytes:
    payload = struct.pack("<II", slot, generation) + worker_id.encode()
    return b"PG" + bytes([1, SLOT_SOCKET]) + struct.pack("<IQ", len(payload), slot) + payload


def run_perago(jobs: int, in_flight: int, tasks: int, warmup: int) -> list[int]:
    supervisor, broker_end = socket.socketpair()
    dispatcher = _core.Dispatcher(broker_end.fileno())
    broker_end.close()
    children = []
    for slot in range(1, jobs + 1):
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PERAGO_SLOT_FD=str(theirs.fileno()), PERAGO_SLOT_GENERATION="1")
        env.pop("PERAGO_READY_FD", None)
        children.append(subprocess.Popen([sys.executable, "-c", EXECUTOR], env=env, pass_fds=[theirs.fileno()]))
        theirs.close()
        socket.send_fds(supervisor, [control_frame(slot, 1, f"bench{slot:04d}")], [ours.fileno()])
        ours.close()
    ready = 0
    while ready < jobs:
        ready += sum(isinstance(event, _core.SlotReady) for event in dispatcher.next_events(30))
    samples: list[int] = []
    started: dict[int, int] = {}
    sent = 0

    def send_one() -> None:
        nonlocal sent
        task_id = f"t{sent}"
        start = time.perf_counter_ns()
        slot = dispatcher.assign(TASK, task_id)
        assert slot is not None, "a slot must be free"
        started[slot] = start
        sent += 1

    for _ in range(in_flight):
        send_one()
    total = warmup + tasks
    done = 0
    while done < total:
        for event in dispatcher.next_events(10):
            if isinstance(event, _core.TaskCompleted):
                elapsed = time.perf_counter_ns() - started[event.slot]
                done += 1
                if done > warmup:
                    samples.append(elapsed)
                if sent < total:
                    send_one()
            elif isinstance(event, _core.DispatcherLog | _core.TaskFailed):
                raise RuntimeError(f"dispatcher bench went wrong: {event!r}")
    dispatcher.stop_executors()
    for child in children:
        child.wait(30)
    supervisor.close()
    return samples


def pipe_executor(conn: Connection) -> None:
    """Echo loop; an empty message stops it (forked siblings hold each other's pipe ends,
    so end of file never comes)."""
    while message := conn.recv_bytes():
        conn.send_bytes(message[:32] + RESULT)


def run_pipe(jobs: int, in_flight: int, tasks: int, warmup: int) -> list[int]:
    context = multiprocessing.get_context("fork")
    connections: list[Connection] = []
    processes = []
    for _ in range(jobs):
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(target=pipe_executor, args=(theirs,), daemon=True)
        process.start()
        theirs.close()
        connections.append(ours)
        processes.append(process)
    samples: list[int] = []
    running: dict[Connection, tuple[int, bytes]] = {}
    idle = list(connections)
    sent = 0

    def send_one() -> None:
        nonlocal sent
        execution_id = uuid.uuid4().hex.encode()
        start = time.perf_counter_ns()
        conn = idle.pop(0)
        conn.send_bytes(execution_id + TASK)
        running[conn] = (start, execution_id)
        sent += 1

    for _ in range(in_flight):
        send_one()
    total = warmup + tasks
    done = 0
    while done < total:
        for conn in wait(connections):
            assert isinstance(conn, Connection)
            reply = conn.recv_bytes()
            start, execution_id = running.pop(conn)
            idle.append(conn)
            if reply[:32] != execution_id:
                raise RuntimeError("pipe bench: completion for another execution")
            elapsed = time.perf_counter_ns() - start
            done += 1
            if done > warmup:
                samples.append(elapsed)
            if sent < total:
                send_one()
    for conn in connections:
        conn.send_bytes(b"")
        conn.close()
    for process in processes:
        process.join(30)
    return samples


def broker_side_perago(tasks: int) -> list[int]:
    supervisor, broker_end = socket.socketpair()
    dispatcher = _core.Dispatcher(broker_end.fileno())
    broker_end.close()
    ours, executor = socket.socketpair()
    socket.send_fds(supervisor, [control_frame(1, 1, "bench0001")], [ours.fileno()])
    ours.close()
    executor.sendall(b"PG" + bytes([1, 1]) + struct.pack("<IQ", 0, 1))
    while not any(isinstance(event, _core.SlotReady) for event in dispatcher.next_events(10)):
        pass
    samples = []
    for index in range(tasks):
        start = time.perf_counter_ns()
        dispatcher.assign(TASK, f"t{index}")
        handed_over = time.perf_counter_ns()
        header = executor.recv(16, socket.MSG_WAITALL)
        length, dispatch_id = struct.unpack("<IQ", header[4:])
        execution_id = executor.recv(length, socket.MSG_WAITALL)[:32]
        payload = execution_id + RESULT
        executor.sendall(b"PG" + bytes([1, 3]) + struct.pack("<IQ", len(payload), dispatch_id) + payload)
        answered = time.perf_counter_ns()
        [event] = dispatcher.next_events(10)
        assert isinstance(event, _core.TaskCompleted)
        samples.append(handed_over - start + time.perf_counter_ns() - answered)
    executor.close()
    supervisor.close()
    return samples


def broker_side_pipe(tasks: int) -> list[int]:
    ours, executor = multiprocessing.Pipe(duplex=True)
    samples = []
    for _ in range(tasks):
        start = time.perf_counter_ns()
        execution_id = uuid.uuid4().hex.encode()
        ours.send_bytes(execution_id + TASK)
        handed_over = time.perf_counter_ns()
        message = executor.recv_bytes()
        executor.send_bytes(message[:32] + RESULT)
        answered = time.perf_counter_ns()
        [ready] = wait([ours])
        assert isinstance(ready, Connection)
        reply = ready.recv_bytes()
        if reply[:32] != execution_id:
            raise RuntimeError("pipe bench: completion for another execution")
        samples.append(handed_over - start + time.perf_counter_ns() - answered)
    ours.close()
    executor.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    args = parser.parse_args()
    print(f"dispatcher round trip (Assign -> Complete), -j {args.jobs}, {args.tasks} tasks, {os.cpu_count()} CPUs")
    print(f"{'':24}{'perago':>10}{'Pipe':>10}{'Pipe/perago':>13}{'goal':>8}")
    for load, in_flight in [("1 in flight", 1), ("all busy", args.jobs)]:
        perago = percentiles(run_perago(args.jobs, in_flight, args.tasks, args.warmup))
        pipe = percentiles(run_pipe(args.jobs, in_flight, args.tasks, args.warmup))
        for index, (name, goal) in enumerate([("p50 us", 20), ("p99 us", 100)]):
            ratio = pipe[index] / perago[index]
            label = f"{load}, {name}"
            print(f"{label:24}{perago[index]:>10.1f}{pipe[index]:>10.1f}{ratio:>12.2f}x{'<= ' + str(goal):>8}")
    perago = percentiles(broker_side_perago(args.tasks))
    pipe = percentiles(broker_side_pipe(args.tasks))
    for index, name in enumerate(["p50 us", "p99 us"]):
        label = f"broker side, {name}"
        print(f"{label:24}{perago[index]:>10.1f}{pipe[index]:>10.1f}{pipe[index] / perago[index]:>12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
