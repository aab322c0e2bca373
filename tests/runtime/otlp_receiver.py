"""A local OTLP/HTTP metrics endpoint for tests: accepts `POST /v1/metrics`, decodes each
`ExportMetricsServiceRequest` (gunzipping when the exporter compressed it) and keeps
every data point as (metric name, attributes, value)."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest


@dataclass(frozen=True)
class Point:
    metric: str
    attributes: dict[str, str]
    value: float  # gauge value, or the histogram's sample count
    stream: int  # start time of a cumulative stream: tells exporting processes apart


class OtlpReceiver:
    def __init__(self) -> None:
        self.points: list[Point] = []
        self.encodings: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "identity")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                ok = self.path == "/v1/metrics"
                if ok:
                    receiver._collect(body, encoding)
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1/metrics"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _collect(self, body: bytes, encoding: str) -> None:
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attributes = {kv.key: kv.value.string_value for kv in point.attributes}
                        value = point.count if kind == "histogram" else _number(point)
                        found.append(Point(metric.name, attributes, value, point.start_time_unix_nano))
        with self._lock:
            self.encodings.add(encoding)
            self.points.extend(found)

    def named(self, metric: str) -> list[Point]:
        with self._lock:
            return [point for point in self.points if point.metric == metric]

    def wait_for(self, *metrics: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.named(name) for name in metrics):
            if time.monotonic() > deadline:
                raise AssertionError(f"metrics never exported: {[m for m in metrics if not self.named(m)]}")
            time.sleep(0.05)


def _number(point: Any) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
