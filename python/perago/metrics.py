"""Author-facing metrics types: `MetricSpec` (what the runtime records) and the
abstract `MetricRecorder` injected as a task's `metrics` argument.

Exporting (OTLP/HTTP), name prefixes (`app.`, `runtime.`) and label merging belong
to the recorder implementations; a task only sees this interface. Metrics never
influence the TaskDef.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from time import perf_counter

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from perago.config import RuntimeConfig
    from perago.metrics_otlp import OtlpMetricRecorder
    from perago.task import TaskDefinition

Labels = Mapping[str, str]


class MetricSpec(BaseModel):
    """Which runtime metrics a metrics-enabled task records.

    `attempts`: attempt-duration histogram; `workspace_io`: download/upload/publish
    duration and bytes; `worker_capacity`: busy-slots gauge (needs
    `PERAGO_INSTANCE_ID` at `perago start`). Declaring it requires the task function
    to take a `metrics: MetricRecorder` parameter.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: bool = True
    workspace_io: bool = True
    worker_capacity: bool = True


@dataclass(frozen=True)
class TaskAttemptMetricContext:
    """Identity of the attempt an application metric belongs to."""

    task_name: str
    task_id: str
    workflow_instance_id: str
    execution_id: str
    worker_id: str
    retry_count: int


@dataclass(frozen=True)
class RuntimeMetricContext:
    """Identity attached to perago's own runtime metrics."""

    task_name: str
    perago_instance_id: str | None = None


class MetricRecorder(ABC):
    """The metrics API a task receives; annotate the `metrics` parameter with exactly this class.

    Application samples carry the label `task_name`; user labels that collide with
    perago's labels or with `task_id`, `workflow_instance_id`, `execution_id`,
    `worker_id` are dropped by the implementation (with a log warning).
    """

    @abstractmethod
    def with_context(self, context: TaskAttemptMetricContext) -> MetricRecorder:
        """A recorder bound to one attempt; the runtime calls this before the task body."""

    @property
    @abstractmethod
    def context(self) -> TaskAttemptMetricContext | None:
        """The bound attempt identity, `None` before `with_context`."""

    @abstractmethod
    def histogram(self, name: str, value: int | float, *, labels: Labels | None = None) -> None:
        """Record one sample of a distribution."""

    @abstractmethod
    def gauge(self, name: str, value: int | float, *, labels: Labels | None = None) -> None:
        """Record the current value of something."""

    def timer(self, name: str, *, labels: Labels | None = None) -> AbstractContextManager[None]:
        """Context manager recording its elapsed seconds as a `histogram` sample (also when the block raises)."""
        return _elapsed(lambda seconds: self.histogram(name, seconds, labels=labels))

    @abstractmethod
    def runtime_histogram(
        self, name: str, value: int | float, *, context: RuntimeMetricContext, labels: Labels | None = None
    ) -> None:
        """Record one sample of a perago runtime distribution."""

    @abstractmethod
    def runtime_gauge(
        self, name: str, value: int | float, *, context: RuntimeMetricContext, labels: Labels | None = None
    ) -> None:
        """Record the current value of a perago runtime gauge."""

    def runtime_timer(
        self, name: str, *, context: RuntimeMetricContext, labels: Labels | None = None
    ) -> AbstractContextManager[None]:
        """Context manager recording its elapsed seconds as a `runtime_histogram` sample."""
        return _elapsed(lambda seconds: self.runtime_histogram(name, seconds, context=context, labels=labels))


@contextmanager
def _elapsed(record: Callable[[float], None]) -> Iterator[None]:
    started = perf_counter()
    try:
        yield
    finally:
        record(perf_counter() - started)


def worker_metrics(task: TaskDefinition, config: RuntimeConfig) -> OtlpMetricRecorder | None:
    """The OTLP recorder a worker (executor, broker, thread runner) keeps for a
    metrics-enabled task, `None` for any other: OpenTelemetry, slow to import, is loaded
    only then."""
    if task.metrics is None:
        return None
    from perago.metrics_otlp import worker_recorder

    return worker_recorder(config.metrics, task.name)


__all__ = [
    "Labels",
    "MetricRecorder",
    "MetricSpec",
    "RuntimeMetricContext",
    "TaskAttemptMetricContext",
    "worker_metrics",
]
