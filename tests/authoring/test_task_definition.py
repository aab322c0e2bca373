"""TaskDefinition records and the MetricRecorder base; decorator rejections are in test_oracle_cases."""

import dataclasses
from pathlib import Path

import pytest
from pydantic import BaseModel

from perago import (
    MetricRecorder,
    MetricSpec,
    TaskControls,
    TaskDefinition,
    WorkspaceSpec,
    load_module_task,
    task,
)
from perago.metrics import RuntimeMetricContext


class P(BaseModel):
    a: int


class R(BaseModel):
    b: int


def test_definition_is_a_frozen_record_of_the_declaration() -> None:
    spec = WorkspaceSpec(prefix="/data", read_only=True)

    def body(workspace: Path, params: P) -> R:
        return R(b=params.a)

    task(name="def.record", owner_email="o@example.net", description="d", workspace=spec, strict_params=True)(body)
    definition = body.__perago_task__
    assert isinstance(definition, TaskDefinition)
    assert (definition.name, definition.owner_email, definition.description) == ("def.record", "o@example.net", "d")
    assert (definition.fn, definition.params_model, definition.output_model) == (body, P, R)
    assert definition.workspace is spec and definition.has_workspace and definition.strict_params
    assert definition.metrics is None and definition.controls == TaskControls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.name = "other"  # type: ignore[misc]


def test_name_is_stored_untrimmed() -> None:
    def body(params: P) -> R:
        return R(b=params.a)

    task(name="  padded  ", owner_email=" o ")(body)
    assert (body.__perago_task__.name, body.__perago_task__.owner_email) == ("  padded  ", " o ")


def test_loading_returns_the_definition_attached_to_the_function() -> None:
    definition = load_module_task("authoring_tasks.metrics_free")
    assert definition.fn.__perago_task__ is definition
    assert definition.metrics == MetricSpec() and not definition.has_workspace


class RecordingRecorder(MetricRecorder):
    """Implements only the abstract methods; timers come from the base class."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, str, float, object]] = []

    def with_context(self, context):  # noqa: ANN001, ANN201
        return self

    @property
    def context(self):  # noqa: ANN201
        return None

    def histogram(self, name, value, *, labels=None) -> None:  # noqa: ANN001
        self.samples.append(("app", name, value, labels))

    def gauge(self, name, value, *, labels=None) -> None:  # noqa: ANN001
        self.samples.append(("gauge", name, value, labels))

    def runtime_histogram(self, name, value, *, context, labels=None) -> None:  # noqa: ANN001
        self.samples.append(("runtime", name, value, (context.task_name, labels)))

    def runtime_gauge(self, name, value, *, context, labels=None) -> None:  # noqa: ANN001
        self.samples.append(("runtime-gauge", name, value, labels))


def test_timers_record_elapsed_seconds_even_when_the_block_raises() -> None:
    recorder = RecordingRecorder()
    with recorder.timer("render", labels={"stage": "mix"}):
        pass
    with pytest.raises(KeyError), recorder.runtime_timer("io", context=RuntimeMetricContext(task_name="t")):
        raise KeyError("k")
    (kind, name, seconds, labels), (runtime_kind, runtime_name, runtime_seconds, runtime_labels) = recorder.samples
    assert (kind, name, labels) == ("app", "render", {"stage": "mix"})
    assert (runtime_kind, runtime_name, runtime_labels) == ("runtime", "io", ("t", None))
    assert seconds >= 0 and runtime_seconds >= 0


def test_recorder_must_implement_the_sample_methods() -> None:
    class Incomplete(MetricRecorder):
        pass

    with pytest.raises(TypeError, match="abstract methods context, gauge, histogram"):
        Incomplete()  # type: ignore[abstract]
