"""Metrics-enabled tasks run under `perago start` and their samples reach an OTLP/HTTP endpoint."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from perago.config import MetricsConfig
from perago.launch import StartCheckFailed, check_start
from perago.metrics import RuntimeMetricContext, TaskAttemptMetricContext
from perago.metrics_otlp import OtlpMetricRecorder
from perago.testing.conductor import ConductorEmulator
from perago.testing.lakefs import LakeFSEmulator

from .conductor_admin import ConductorAdmin
from .notes_repository import create_notes_repository
from .otlp_receiver import OtlpReceiver
from .worker_process import start_worker, stop_worker

ATTEMPT = TaskAttemptMetricContext(
    task_name="demo.task", task_id="t1", workflow_instance_id="w1", execution_id="e1", worker_id="wk", retry_count=0
)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def test_recorder_labels_prefixes_and_gzip_export(receiver: OtlpReceiver) -> None:
    warnings: list[dict[str, Any]] = []
    sink = logger.add(lambda message: warnings.append(message.record), level="WARNING")
    config = MetricsConfig(endpoint=receiver.endpoint, instance_id="pod-7", compression="gzip")
    recorder = OtlpMetricRecorder(config, "demo.task")
    try:
        bound = recorder.with_context(ATTEMPT)
        with bound.timer("step_seconds", labels={"step": "parse"}):
            pass
        bound.gauge("queue_depth", 4, labels={"task_name": "forged", "worker_id": "forged"})
        recorder.set_busy_slots(2)
        recorder.runtime_histogram(
            "workspace_io_bytes", 10, context=RuntimeMetricContext("demo.task"), labels={"operation": "upload"}
        )
        with pytest.raises(RuntimeError, match="with_context"):
            recorder.histogram("unbound", 1)
    finally:
        recorder.shutdown()
        logger.remove(sink)
    # shutdown() flushed everything once; the export interval (default 60 s) never elapsed
    assert receiver.encodings == {"gzip"}
    (step,) = receiver.named("app.step_seconds")
    assert step.attributes == {"task_name": "demo.task", "step": "parse"} and step.value == 1
    (depth,) = receiver.named("app.queue_depth")
    assert depth.attributes == {"task_name": "demo.task"} and depth.value == 4
    (busy,) = receiver.named("runtime.busy_slots")
    assert busy.attributes == {"task_name": "demo.task", "perago_instance_id": "pod-7"} and busy.value == 2
    (io,) = receiver.named("runtime.workspace_io_bytes")
    assert io.attributes == {"task_name": "demo.task", "operation": "upload"}
    dropped = sorted(record["extra"]["label_key"] for record in warnings if "label dropped" in record["message"])
    assert dropped == ["task_name", "worker_id"]


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_perago_start_exports_task_and_runtime_metrics(mode: str, receiver: OtlpReceiver, tmp_path: Path) -> None:
    with ConductorEmulator() as emulator:
        admin = ConductorAdmin(emulator.url)
        flow = admin.setup_single_task_workflow("runtime.measured")
        worker = start_worker(
            emulator.url,
            tmp_path,
            "runtime.workers.measured",
            mode=mode,
            processes=2,
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=receiver.endpoint,
            OTEL_METRIC_EXPORT_INTERVAL="200",
            PERAGO_INSTANCE_ID="pod-1",
        )
        try:
            workflows = admin.wait_for_workflows([admin.start(flow, {"size": size}) for size in (3, 5, 8)], timeout=60)
            receiver.wait_for("app.item_size", "runtime.task_attempt_duration_seconds", "runtime.busy_slots")
        finally:
            exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    assert [w["output"]["result"] for w in workflows] == [{"size": 3}, {"size": 5}, {"size": 8}]
    item_sizes = receiver.named("app.item_size")
    assert {frozenset(p.attributes.items()) for p in item_sizes} == {
        frozenset({"task_name": "runtime.measured", "colour": "blue"}.items())
    }
    # cumulative histograms: the newest export of each worker process has all of its samples
    assert _latest_total(item_sizes) == 3
    durations = receiver.named("runtime.task_attempt_duration_seconds")
    assert {p.attributes["task_name"] for p in durations} == {"runtime.measured"}
    assert _latest_total(durations) == 3
    busy = receiver.named("runtime.busy_slots")
    assert all(p.attributes == {"task_name": "runtime.measured", "perago_instance_id": "pod-1"} for p in busy)
    assert busy[-1].value == 0  # flushed at shutdown, after every slot was released
    assert "task_id" in _dropped_label_keys(tmp_path / "logs")


def test_a_workspace_task_exports_workspace_io_per_operation(receiver: OtlpReceiver, tmp_path: Path) -> None:
    with LakeFSEmulator() as lakefs, ConductorEmulator() as conductor:
        _, workspace = create_notes_repository(lakefs)
        admin = ConductorAdmin(conductor.url)
        flow = admin.setup_single_task_workflow("runtime.measured_notes")
        workflow_id = admin.start(flow, {"name": "hello", "text": "hi there"}, workspace=workspace)
        worker = start_worker(
            conductor.url,
            tmp_path,
            "runtime.workers.measured_notes",
            mode="process",
            processes=1,
            LAKECTL_SERVER_ENDPOINT_URL=lakefs.url,
            LAKECTL_CREDENTIALS_ACCESS_KEY_ID=lakefs.access_key_id,
            LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=lakefs.secret_access_key,
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="gzip",
        )
        try:
            (workflow,) = admin.wait_for_workflows([workflow_id], timeout=60)
        finally:
            exit_code, stderr = stop_worker(worker, signal.SIGTERM)
    assert exit_code == 0, stderr
    assert workflow["status"] == "COMPLETED", workflow.get("reasonForIncompletion")
    # the default export interval (60 s) never elapsed: all of this came from the shutdown flush
    assert receiver.encodings == {"gzip"}
    timed = {p.attributes["operation"] for p in receiver.named("runtime.workspace_io_duration_seconds")}
    assert timed == {"download", "upload", "publish"}
    sized = {p.attributes["operation"]: p for p in receiver.named("runtime.workspace_io_bytes")}
    assert set(sized) == {"download", "upload"}
    assert all(p.attributes["task_name"] == "runtime.measured_notes" for p in sized.values())
    (written,) = receiver.named("app.bytes_written")
    assert written.value == len("hi there")
    assert receiver.named("runtime.task_attempt_duration_seconds")
    assert not receiver.named("runtime.busy_slots")  # worker_capacity=False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is required for metrics-enabled tasks"),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:9/v1/metrics"},
            "PERAGO_INSTANCE_ID is required when worker_capacity metrics are enabled",
        ),
    ],
)
def test_start_refuses_a_metrics_task_without_its_configuration(
    env: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("PERAGO_", "CONDUCTOR_", "LAKECTL_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERAGO_WORKSPACE_ROOT", str(tmp_path / "workspaces"))
    monkeypatch.setenv("PERAGO_LOG_ROOT", str(tmp_path / "logs"))
    monkeypatch.setenv("CONDUCTOR_SERVER_URL", "http://127.0.0.1:9/api")  # never reached
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StartCheckFailed) as refused:
        check_start("runtime.workers.measured", execution_mode="thread")
    assert str(refused.value) == message


def _latest_total(points: list[Any]) -> float:
    """Histogram samples over every exporting process: each exports a cumulative stream
    (told apart by its start time), so take each stream's highest count and add them up."""
    newest: dict[int, float] = {}
    for point in points:
        newest[point.stream] = max(point.value, newest.get(point.stream, 0))
    return sum(newest.values())


def _dropped_label_keys(log_root: Path) -> set[str]:
    keys = set()
    for path in log_root.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "label dropped" in json.dumps(record):
                keys.add(_find(record, "label_key"))
    return keys


def _find(record: Any, key: str) -> Any:
    if isinstance(record, dict):
        if key in record:
            return record[key]
        for value in record.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None
