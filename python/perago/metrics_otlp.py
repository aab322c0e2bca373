"""The `MetricRecorder` a worker hands to metrics-enabled tasks: OpenTelemetry SDK
instruments exported over OTLP/HTTP (authoring.md §4.6, §10.3).

Names get `app.` (task samples) or `runtime.` (perago's own samples). Every sample
carries `task_name`; runtime samples also `perago_instance_id` when the context has one.
A user label that collides with one of those, or with an attempt identity name
(`task_id`, `workflow_instance_id`, `execution_id`, `worker_id`), is dropped with a
warning instead of silently overwriting perago's label or exploding cardinality.

Import this module only when a task declares metrics: the OpenTelemetry import costs
boot time every other worker should not pay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from loguru import logger
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from perago.config import MetricsConfig
from perago.errors import RuntimeConfigError
from perago.metrics import Labels, MetricRecorder, RuntimeMetricContext, TaskAttemptMetricContext

RESERVED_LABELS = frozenset({"task_id", "workflow_instance_id", "execution_id", "worker_id"})


class _Instruments:
    """The meter provider and its instruments, shared by a recorder and every attempt-bound copy."""

    def __init__(self, config: MetricsConfig) -> None:
        exporter = OTLPMetricExporter(
            endpoint=config.endpoint,
            compression=Compression.Gzip if config.compression == "gzip" else None,
            timeout=None if config.timeout_millis is None else config.timeout_millis / 1000,
        )
        reader = PeriodicExportingMetricReader(
            exporter,
            export_interval_millis=config.export_interval_millis,
            export_timeout_millis=config.timeout_millis,
        )
        self.provider = MeterProvider(metric_readers=[reader])
        self.shutdown_timeout_millis = config.timeout_millis
        self._meter = self.provider.get_meter("perago")
        self._histograms: dict[str, Any] = {}
        self._gauges: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._shut_down = False

    def histogram(self, name: str) -> Any:
        return self._instrument(self._histograms, name, self._meter.create_histogram)

    def gauge(self, name: str) -> Any:
        return self._instrument(self._gauges, name, self._meter.create_gauge)

    def _instrument(self, cache: dict[str, Any], name: str, create: Callable[..., Any]) -> Any:
        instrument = cache.get(name)
        if instrument is None:
            with self._lock:
                instrument = cache.get(name)
                if instrument is None:
                    instrument = cache[name] = create(name, unit="1")
        return instrument

    def shutdown(self) -> None:
        """Export what is left, then stop the export thread; a second call does nothing."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        if self.shutdown_timeout_millis is None:
            self.provider.shutdown()
        else:
            self.provider.shutdown(timeout_millis=self.shutdown_timeout_millis)


class OtlpMetricRecorder(MetricRecorder):
    """One worker's recorder; `with_context` gives the attempt-bound copy a task receives."""

    def __init__(self, config: MetricsConfig, task_name: str) -> None:
        self._instruments = _Instruments(config)
        self._context: TaskAttemptMetricContext | None = None
        self.runtime_context = RuntimeMetricContext(task_name=task_name)
        self.capacity_context = RuntimeMetricContext(task_name=task_name, perago_instance_id=config.instance_id)

    def with_context(self, context: TaskAttemptMetricContext) -> MetricRecorder:
        if self._context is not None:
            logger.warning(
                "MetricRecorder.with_context called on a recorder already bound to an attempt",
                current_task_id=self._context.task_id,
                next_task_id=context.task_id,
            )
        bound = object.__new__(OtlpMetricRecorder)
        bound._instruments = self._instruments
        bound._context = context
        bound.runtime_context = self.runtime_context
        bound.capacity_context = self.capacity_context
        return bound

    @property
    def context(self) -> TaskAttemptMetricContext | None:
        return self._context

    def histogram(self, name: str, value: int | float, *, labels: Labels | None = None) -> None:
        metric = f"app.{name}"
        self._instruments.histogram(metric).record(value, self._app_labels(metric, labels))

    def gauge(self, name: str, value: int | float, *, labels: Labels | None = None) -> None:
        metric = f"app.{name}"
        self._instruments.gauge(metric).set(value, self._app_labels(metric, labels))

    def runtime_histogram(
        self, name: str, value: int | float, *, context: RuntimeMetricContext, labels: Labels | None = None
    ) -> None:
        metric = f"runtime.{name}"
        self._instruments.histogram(metric).record(value, _runtime_labels(metric, context, labels))

    def runtime_gauge(
        self, name: str, value: int | float, *, context: RuntimeMetricContext, labels: Labels | None = None
    ) -> None:
        metric = f"runtime.{name}"
        self._instruments.gauge(metric).set(value, _runtime_labels(metric, context, labels))

    def set_busy_slots(self, count: int) -> None:
        """The `runtime.busy_slots` gauge: leased slots (broker) or busy task threads (thread runner)."""
        self.runtime_gauge("busy_slots", count, context=self.capacity_context)

    def shutdown(self) -> None:
        """Flush pending samples to the endpoint and stop exporting (the worker loop's end)."""
        self._instruments.shutdown()

    def _app_labels(self, metric: str, labels: Labels | None) -> dict[str, str]:
        if self._context is None:
            raise RuntimeError("MetricRecorder is not bound to an attempt: call with_context first")
        return _merge(metric, {"task_name": self._context.task_name}, labels)


def _runtime_labels(metric: str, context: RuntimeMetricContext, labels: Labels | None) -> dict[str, str]:
    perago_labels = {"task_name": context.task_name}
    if context.perago_instance_id is not None:
        perago_labels["perago_instance_id"] = context.perago_instance_id
    return _merge(metric, perago_labels, labels)


def _merge(metric: str, perago_labels: dict[str, str], labels: Labels | None) -> dict[str, str]:
    if not labels:
        return perago_labels
    merged = dict(perago_labels)
    for key, value in labels.items():
        if key in perago_labels or key in RESERVED_LABELS:
            logger.warning(
                "metric label dropped: the name is perago's",
                metric_name=metric,
                label_key=key,
                perago_label_value=perago_labels.get(key, "<reserved>"),
                ignored_user_label_value=value,
            )
            continue
        merged[key] = value
    return merged


def worker_recorder(metrics_config: MetricsConfig | None, task_name: str) -> OtlpMetricRecorder:
    """The recorder of a worker running `task_name` (a metrics-enabled task)."""
    if metrics_config is None:
        raise RuntimeConfigError("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is required for metrics-enabled tasks")
    return OtlpMetricRecorder(metrics_config, task_name)


__all__ = ["RESERVED_LABELS", "OtlpMetricRecorder", "worker_recorder"]
