"""The `@task` decorator, the `TaskDefinition` it produces, and the module loader.

A task module declares exactly one task; declaration errors surface when the
module is imported, as `TaskDefinitionError`. The checks run in a fixed order
(first failure wins) because users and tests see only the first message.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from perago.controls import TaskControls
from perago.errors import TaskDefinitionError
from perago.metrics import MetricRecorder, MetricSpec
from perago.workspace_spec import WorkspaceSpec

if TYPE_CHECKING:
    from perago.contract import TaskContract

TaskFunction = TypeVar("TaskFunction", bound=Callable[..., Any])

ALLOWED_SIGNATURES = (
    "task function must be exactly (workspace: Path, params: ParamsModel), "
    "(workspace: Path, params: ParamsModel, metrics: MetricRecorder), "
    "(params: ParamsModel), or (params: ParamsModel, metrics: MetricRecorder)"
)

# Declared tasks by the `__module__` of their function, in declaration order.
_REGISTRY: dict[str, list[TaskDefinition]] = {}


@dataclass(frozen=True)
class TaskDefinition:
    """The validated contract of one task, as declared by `@task`.

    Obtain it from `load_module_task` or from the decorated function's
    `__perago_task__` attribute; it is not meant to be built by hand.
    """

    name: str
    owner_email: str
    fn: Callable[..., Any]
    params_model: type[BaseModel]
    output_model: type[BaseModel]
    strict_params: bool = False
    description: str | None = None
    workspace: WorkspaceSpec | None = None
    metrics: MetricSpec | None = None
    controls: TaskControls = field(default_factory=TaskControls)

    @property
    def has_workspace(self) -> bool:
        """Whether the task runs over a workspace (it was declared with a `WorkspaceSpec`)."""
        return self.workspace is not None

    @cached_property
    def contract(self) -> TaskContract:
        """Input/output validators of this task, built on first use and then reused."""
        from perago.contract import TaskContract

        return TaskContract(self)


def task(
    *,
    name: str,
    owner_email: str,
    description: str | None = None,
    workspace: WorkspaceSpec | None = None,
    metrics: MetricSpec | None = None,
    controls: TaskControls | None = None,
    strict_params: bool = False,
    **unsupported: object,
) -> Callable[[TaskFunction], TaskFunction]:
    """Declare the one task of this module; returns the function itself, unchanged.

    Accepted shapes: `(workspace: Path, params: P) -> R` and
    `(workspace: Path, params: P, metrics: MetricRecorder) -> R` with
    `workspace=WorkspaceSpec(...)`; `(params: P) -> R` and
    `(params: P, metrics: MetricRecorder) -> R` without. `P` and `R` are Pydantic
    models; a `metrics` parameter goes with `metrics=MetricSpec(...)`.
    `strict_params=True` rejects unknown `params` keys instead of dropping them.
    """
    if unsupported:
        raise TaskDefinitionError(f"unsupported task decorator fields: {', '.join(sorted(unsupported))}")

    def decorate(fn: TaskFunction) -> TaskFunction:
        try:
            definition = _define_task(
                fn,
                name=name,
                owner_email=owner_email,
                description=description,
                workspace=workspace,
                metrics=metrics,
                controls=TaskControls() if controls is None else controls,
                strict_params=strict_params,
            )
        except ValidationError as exc:
            raise TaskDefinitionError(str(exc)) from exc
        _REGISTRY.setdefault(fn.__module__, []).append(definition)
        fn.__perago_task__ = definition  # type: ignore[attr-defined]
        return fn

    return decorate


def load_module_task(module_target: str) -> TaskDefinition:
    """Import `module_target` (a dotted import path) and return the one task it declares.

    The import path is not modified: the module must be importable as is. Tasks
    declared in other modules and merely imported do not count.
    """
    _check_module_target(module_target)
    module = importlib.import_module(module_target)
    declared: dict[int, TaskDefinition] = {}
    for definition in _REGISTRY.get(module.__name__, ()):
        if definition.fn.__module__ == module.__name__:
            declared.setdefault(id(definition), definition)
    if not declared:
        raise TaskDefinitionError(f"{module_target} does not declare a Perago task")
    if len(declared) > 1:
        raise TaskDefinitionError(f"{module_target} declares more than one Perago task")
    return next(iter(declared.values()))


def _check_module_target(module_target: str) -> None:
    if (
        not module_target
        or module_target.endswith(".py")
        or any(separator in module_target for separator in "/\\:")
        or not all(segment.isidentifier() for segment in module_target.split("."))
    ):
        raise TaskDefinitionError("module target must be a Python import path, not a file path or object path")


def _define_task(
    fn: Callable[..., Any],
    *,
    name: str,
    owner_email: str,
    description: str | None,
    workspace: WorkspaceSpec | None,
    metrics: MetricSpec | None,
    controls: TaskControls,
    strict_params: bool,
) -> TaskDefinition:
    # Non-str values fail on `.strip()` with AttributeError, as in perago 0.6.
    if not name.strip():
        raise TaskDefinitionError("task name is required")
    if "/" in name or "\\" in name:
        raise TaskDefinitionError("task name must not contain path separators")
    if not owner_email.strip():
        raise TaskDefinitionError("owner_email is required")
    if workspace is not None and not isinstance(workspace, WorkspaceSpec):
        raise TaskDefinitionError("workspace must be a WorkspaceSpec")
    if metrics is not None and not isinstance(metrics, MetricSpec):
        raise TaskDefinitionError("metrics must be a MetricSpec")
    if not isinstance(controls, TaskControls):
        raise TaskDefinitionError("controls must be a TaskControls")
    if not isinstance(strict_params, bool):
        raise TaskDefinitionError("strict_params must be a bool")
    if workspace is None and controls.publish_budget is not None:
        raise TaskDefinitionError("publish_budget requires workspace=WorkspaceSpec(...)")
    if inspect.iscoroutinefunction(fn):
        raise TaskDefinitionError("task function must be a synchronous function")

    parameters = list(inspect.signature(fn).parameters.values())
    if any(parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for parameter in parameters):
        raise TaskDefinitionError("task function must not use *args, **kwargs, or keyword-only fields")
    if any(parameter.default is not inspect.Parameter.empty for parameter in parameters):
        raise TaskDefinitionError("task function parameters must not declare defaults")
    try:
        hints = get_type_hints(fn)
    except Exception as exc:  # any failure to evaluate an annotation is a definition error
        raise TaskDefinitionError(f"failed to resolve task type hints: {exc}") from exc

    _check_signature_shape([parameter.name for parameter in parameters], hints, workspace, metrics)

    params_model = hints.get("params")
    output_model = hints.get("return")
    if not _is_model_class(params_model):
        raise TaskDefinitionError("params must be annotated as a Pydantic BaseModel subclass")
    if not _is_model_class(output_model):
        raise TaskDefinitionError("return value must be annotated as a Pydantic BaseModel subclass")

    return TaskDefinition(
        name=name,
        owner_email=owner_email,
        fn=fn,
        params_model=params_model,
        output_model=output_model,
        strict_params=strict_params,
        description=description,
        workspace=workspace,
        metrics=metrics,
        controls=controls,
    )


def _check_signature_shape(
    names: list[str],
    hints: dict[str, Any],
    workspace: WorkspaceSpec | None,
    metrics: MetricSpec | None,
) -> None:
    """Match the parameter names against the four allowed shapes (see `task`)."""
    if len(names) == 3:
        _check_workspace_parameters(names, hints, workspace)
        if names[2] != "metrics":
            raise TaskDefinitionError("metrics-enabled task parameter must be named metrics")
        _check_metrics_parameter(hints, metrics)
    elif len(names) == 2 and names == ["params", "metrics"]:
        _check_no_workspace(workspace)
        _check_metrics_parameter(hints, metrics)
    elif len(names) == 2:
        _check_workspace_parameters(names, hints, workspace)
        _check_no_metrics(metrics)
    elif len(names) == 1:
        if names[0] != "params":
            raise TaskDefinitionError("workspace-free task parameter must be named params")
        _check_no_workspace(workspace)
        _check_no_metrics(metrics)
    else:
        raise TaskDefinitionError(ALLOWED_SIGNATURES)


def _check_workspace_parameters(names: list[str], hints: dict[str, Any], workspace: WorkspaceSpec | None) -> None:
    if names[0] != "workspace" or names[1] != "params":
        raise TaskDefinitionError("workspace task parameters must be named workspace and params")
    if hints.get("workspace") is not Path:
        raise TaskDefinitionError("workspace must be annotated as pathlib.Path")
    if workspace is None:
        raise TaskDefinitionError("workspace task functions require workspace=WorkspaceSpec(...)")


def _check_metrics_parameter(hints: dict[str, Any], metrics: MetricSpec | None) -> None:
    if hints.get("metrics") is not MetricRecorder:
        raise TaskDefinitionError("metrics must be annotated as perago.MetricRecorder")
    if metrics is None:
        raise TaskDefinitionError("metrics parameter requires metrics=MetricSpec(...)")


def _check_no_workspace(workspace: WorkspaceSpec | None) -> None:
    if workspace is not None:
        raise TaskDefinitionError("workspace-free task functions must not declare workspace=WorkspaceSpec(...)")


def _check_no_metrics(metrics: MetricSpec | None) -> None:
    if metrics is not None:
        raise TaskDefinitionError("metrics=MetricSpec(...) requires a metrics parameter")


def _is_model_class(value: object) -> bool:
    return inspect.isclass(value) and issubclass(value, BaseModel)


__all__ = ["ALLOWED_SIGNATURES", "TaskDefinition", "load_module_task", "task"]
