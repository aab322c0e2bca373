"""How many task round trips per second the Conductor emulator serves (no perago involved).

A round trip is one task handed out by a batch poll and completed by an update. The
emulator runs in its own process (`ConductorEmulator(in_process=False)`); the client is a
bare asyncio loop in this process that pipelines requests on a few keep-alive
connections and pulls ids out of the answers with a regex, so it costs far less per task
than the server and the number printed is the server's ceiling, not the client's.

Workflows are chains of `--chain` SIMPLE tasks of one type, started (untimed) before the
clock starts; each completion schedules the next task, as on a real server.

    .venv/bin/python benches/emulator_ceiling.py [--workflows 2000] [--chain 10] [--batch 50] [--connections 4]

Goal (issue 3): >= 5,000 round trips/s on one core, and >= 3x the fastest worker runtime
(aim: >= 12,000/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time

from perago.testing.conductor import ConductorEmulator

TASK_TYPE = "bench_task"
WORKFLOW = "bench_chain"
_WORKFLOW_IDS = re.compile(rb'"workflowInstanceId":"([^"]+)"')
_TASK_IDS = re.compile(rb'"taskId":"([^"]+)"')


def task_ids(body: bytes) -> list[tuple[bytes, bytes]]:
    """(workflowInstanceId, taskId) of each task in a poll answer, without parsing the JSON."""
    return list(zip(_WORKFLOW_IDS.findall(body), _TASK_IDS.findall(body), strict=True))


class Connection:
    """One keep-alive HTTP/1.1 connection that can pipeline requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    async def send(self, requests: list[bytes]) -> None:
        self.writer.write(b"".join(requests))
        await self.writer.drain()

    async def answer(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        marker = head.find(b"Content-Length: ")
        if marker >= 0:
            length = int(head[marker + 16 : head.index(b"\r\n", marker)])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


async def setup(host: str, port: int, workflows: int, chain: int) -> None:
    connection = await Connection.open(host, port)
    taskdef = [{"name": TASK_TYPE, "retryCount": 0, "responseTimeoutSeconds": 600}]
    definition = {
        "name": WORKFLOW,
        "version": 1,
        "tasks": [
            {"name": TASK_TYPE, "taskReferenceName": f"step{index}", "inputParameters": {"n": "${workflow.input.n}"}}
            for index in range(chain)
        ],
    }
    await connection.send([connection.request("POST", "/api/metadata/taskdefs", json.dumps(taskdef).encode())])
    assert (await connection.answer())[0] == 200
    await connection.send([connection.request("POST", "/api/metadata/workflow", json.dumps(definition).encode())])
    assert (await connection.answer())[0] == 200
    started = 0
    while started < workflows:
        batch = min(500, workflows - started)
        await connection.send([connection.request("POST", f"/api/workflow/{WORKFLOW}", b'{"n": 1}') for _ in range(batch)])
        for _ in range(batch):
            status, _ = await connection.answer()
            assert status == 200, status
        started += batch
    connection.close()


async def worker_v1(host: str, port: int, batch: int, done: list[int], target: int) -> None:
    """Batch poll, then pipeline one `POST /api/tasks` per task."""
    connection = await Connection.open(host, port)
    poll = connection.request("GET", f"/api/tasks/poll/batch/{TASK_TYPE}?workerid=bench&count={batch}&timeout=100")
    while done[0] < target:
        await connection.send([poll])
        status, body = await connection.answer()
        assert status == 200, (status, body[:200])
        ids = task_ids(body)
        if not ids:
            continue
        updates = [
            connection.request(
                "POST",
                "/api/tasks",
                b'{"workflowInstanceId":"%s","taskId":"%s","status":"COMPLETED","outputData":{"ok":true},"workerId":"bench"}'
                % (workflow_id, task_id),
            )
            for workflow_id, task_id in ids
        ]
        await connection.send(updates)
        for _ in updates:
            status, _ = await connection.answer()
            assert status == 200, status
        done[0] += len(ids)
    connection.close()


async def worker_v2(host: str, port: int, done: list[int], target: int) -> None:
    """The SDK's modern path: each `update-v2` answer carries the next task."""
    connection = await Connection.open(host, port)
    poll = connection.request("GET", f"/api/tasks/poll/batch/{TASK_TYPE}?workerid=bench&count=1&timeout=100")
    current: tuple[bytes, bytes] | None = None
    while done[0] < target:
        if current is None:
            await connection.send([poll])
            status, body = await connection.answer()
            ids = task_ids(body)
            if not ids:
                continue
            current = ids[0]
        workflow_id, task_id = current
        body = b'{"workflowInstanceId":"%s","taskId":"%s","status":"COMPLETED","outputData":{"ok":true},"workerId":"bench"}' % (
            workflow_id,
            task_id,
        )
        await connection.send([connection.request("POST", "/api/tasks/update-v2", body)])
        status, answer = await connection.answer()
        done[0] += 1
        ids = task_ids(answer) if status == 200 else []
        current = ids[0] if ids else None
    connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(mode: str, host: str, port: int, pid: int, args: argparse.Namespace) -> tuple[float, float]:
    """Returns (round trips per wall second, round trips per emulator CPU second)."""
    target = args.workflows * args.chain
    await setup(host, port, args.workflows, args.chain)
    done = [0]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    if mode == "v1":
        workers = [worker_v1(host, port, args.batch, done, target) for _ in range(args.connections)]
    else:
        workers = [worker_v2(host, port, done, target) for _ in range(args.connections * 4)]
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    return done[0] / elapsed, done[0] / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--modes", default="v1,v2")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        with ConductorEmulator(in_process=False) as conductor:
            assert conductor.pid is not None
            wall_rate, cpu_rate = asyncio.run(measure(mode, conductor.host, conductor.port, conductor.pid, args))
        label = "batch poll + POST /api/tasks" if mode == "v1" else "update-v2 chaining"
        print(
            f"emulator [{label}], {args.workflows * args.chain} tasks: {wall_rate:,.0f} round trips/s wall clock; "
            f"{cpu_rate:,.0f} per emulator CPU-second = one-core ceiling "
            f"({cpu_rate / 5000:.2f}x the 5,000/s floor, {cpu_rate / 12000:.2f}x the 12,000/s aim)"
        )


if __name__ == "__main__":
    main()
