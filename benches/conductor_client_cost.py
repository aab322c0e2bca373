"""CPU per HTTP round trip of perago's Conductor transport against common Python clients.

One loopback server in a child process answers every request with a fixed small JSON
body (keep-alive), so the numbers are the client's own cost: user + system CPU of this
process per POST, measured with `time.process_time`. Prints µs per request and the
ratio to perago's transport. Run: `.venv/bin/python benches/conductor_client_cost.py`.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Callable

SERVER = r"""
import asyncio, sys
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
class Fixed(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(REPLY)
async def main():
    server = await asyncio.get_running_loop().create_server(Fixed, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

REQUESTS = 3000
BODY = b'{"workflowInstanceId":"wf","taskId":"t","workerId":"w","status":"COMPLETED","outputData":{"result":{}}}'
HEADERS = {"Content-Type": "application/json", "Accept": "text/plain"}


def cpu_per_request(send: Callable[[], object]) -> float:
    for _ in range(200):
        send()
    started = time.process_time()
    for _ in range(REQUESTS):
        send()
    return (time.process_time() - started) / REQUESTS * 1e6


def main() -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/api/tasks"
        clients: dict[str, Callable[[], object]] = {}

        from perago.conductor.transport import HttpTransport, ServerAddress

        transport = HttpTransport(ServerAddress.parse(f"http://127.0.0.1:{port}/api"))
        clients["perago transport"] = lambda: transport.request("POST", "/tasks", BODY, {"Accept": "text/plain"})

        connection = http.client.HTTPConnection("127.0.0.1", port)

        def stdlib() -> None:
            connection.request("POST", "/api/tasks", BODY, HEADERS)
            connection.getresponse().read()

        clients["http.client"] = stdlib
        for name, build in (("urllib3", _urllib3), ("requests", _requests), ("httpx", _httpx)):
            try:
                clients[name] = build(url)
            except ImportError:
                pass
        results = {name: cpu_per_request(send) for name, send in clients.items()}
        base = results["perago transport"]
        print(f"{'client':18s} {'CPU µs/request':>15s} {'× perago':>9s}")
        for name, micros in results.items():
            print(f"{name:18s} {micros:15.1f} {micros / base:9.2f}")
    finally:
        server.kill()
        server.wait()


def _urllib3(url: str) -> Callable[[], object]:
    import urllib3

    pool = urllib3.PoolManager(maxsize=1)
    return lambda: pool.request("POST", url, body=BODY, headers=HEADERS)


def _requests(url: str) -> Callable[[], object]:
    import requests

    session = requests.Session()
    return lambda: session.post(url, data=BODY, headers=HEADERS)


def _httpx(url: str) -> Callable[[], object]:
    import httpx

    client = httpx.Client()
    return lambda: client.post(url, content=BODY, headers=HEADERS)


if __name__ == "__main__":
    main()
