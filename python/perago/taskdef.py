"""Conductor TaskDef extraction: the JSON `perago extract` writes, byte for byte as perago 0.6.

The TaskDef carries the task's name, owner, controls and the JSON schemas of its
input and output envelopes. Model schemas come from Pydantic and are then
post-processed (metadata stripped, `$ref`s inlined, titles removed,
`additionalProperties` forced) so that Conductor sees one self-contained schema per
envelope. Guardrails, prefixes, metrics and publish budgets never appear in it.
"""

from __future__ import annotations

import json
import warnings
from copy import deepcopy
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, RootModel

from perago.errors import TaskDefinitionError
from perago.models import WorkspaceInput, WorkspaceOutput
from perago.task import TaskDefinition

TASKDEF_SCHEMA_VERSION = 1
TASKDEF_SCHEMA_TYPE = "JSON"

READ_ONLY_PUBLISH_BUDGET_WARNING = (
    "WorkspaceSpec(read_only=True) disables workspace publication; TaskControls.publish_budget is ignored."
)

_STRUCTURAL_SCHEMA_KEYS = frozenset({"$defs", "additionalProperties", "properties", "required", "type"})
_DEFS_REF_PREFIX = "#/$defs/"


def build_taskdef(task: TaskDefinition) -> dict[str, Any]:
    """The JSON-compatible Conductor TaskDef of `task`, keys in Conductor's documented order.

    Raises `TaskDefinitionError` for RootModel or recursive contract models, and
    Pydantic's schema error for fields without a JSON schema. Emits a
    `UserWarning` when a writable workspace task's `response_seconds` is shorter
    than its publish budget (the TaskDef still uses `response_seconds`).
    """
    reject_root_models(task)
    input_properties: dict[str, Any] = {}
    output_properties: dict[str, Any] = {}
    if task.has_workspace:
        input_properties["workspace"] = schema_for_model(WorkspaceInput)
        output_properties["workspace"] = schema_for_model(WorkspaceOutput)
    input_properties["params"] = schema_for_model(task.params_model, allow_extra=not task.strict_params)
    output_properties["result"] = schema_for_model(task.output_model)

    taskdef: dict[str, Any] = {"name": task.name, "ownerEmail": task.owner_email}
    if task.description is not None:
        taskdef["description"] = task.description
    taskdef.update(_control_fields(task))
    taskdef["inputKeys"] = list(input_properties)
    taskdef["outputKeys"] = list(output_properties)
    taskdef["inputSchema"] = _schema_wrapper(f"{task.name}.input", input_properties, allow_extra=True)
    taskdef["outputSchema"] = _schema_wrapper(f"{task.name}.output", output_properties, allow_extra=False)
    return taskdef


def write_taskdef(task: TaskDefinition, output: Path) -> Path:
    """Write the TaskDef of `task` to `output` (a `.json` path; parents created, file overwritten).

    The text is 2-space indented JSON with non-ASCII escaped and a trailing
    newline. Raises `ValueError` for a non-`.json` path or an existing directory.
    """
    if output.suffix != ".json":
        raise ValueError("output must be a JSON file path, for example generated/features.build.json")
    if output.is_dir():
        raise ValueError("output must be a JSON file path, not a directory")
    text = taskdef_json(build_taskdef(task))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output


def taskdef_json(taskdef: dict[str, Any]) -> str:
    """The file text of a built TaskDef: 2-space indent, `\\uXXXX` escapes, trailing newline."""
    return json.dumps(taskdef, indent=2) + "\n"


# -- model graph ----------------------------------------------------------------


def task_model_graph(task: TaskDefinition) -> list[type[BaseModel]]:
    """Every model of the task contract: params graph first, then output graph, each model once.

    Each graph is walked depth-first with a stack, following field annotations
    (including generic arguments and generic-model origins).
    """
    ordered: dict[type[BaseModel], None] = {}
    for root in (task.params_model, task.output_model):
        for model in _model_graph(root):
            ordered.setdefault(model, None)
    return list(ordered)


def root_model_classes(task: TaskDefinition) -> list[type[BaseModel]]:
    """The contract models that are Pydantic `RootModel`s (unsupported)."""
    return [model for model in task_model_graph(task) if issubclass(model, RootModel)]


def reject_root_models(task: TaskDefinition) -> None:
    """Raise `TaskDefinitionError` naming the RootModel classes of the contract, if any."""
    root_models = root_model_classes(task)
    if root_models:
        names = ", ".join(model.__name__ for model in root_models)
        raise TaskDefinitionError(
            f"Pydantic RootModel on task model(s) {names} is not supported; "
            "Perago task contracts must use ordinary BaseModel object models."
        )


def config_dict_models(task: TaskDefinition) -> list[type[BaseModel]]:
    """Contract models with any `ConfigDict` setting (inherited ones included), in graph order."""
    return [model for model in task_model_graph(task) if model.model_config]


def config_dict_warning(task: TaskDefinition) -> str | None:
    """The CLI's ConfigDict warning text (without the `warning: ` prefix), or None."""
    models = config_dict_models(task)
    if not models:
        return None
    names = ", ".join(model.__name__ for model in models)
    return (
        f"Pydantic ConfigDict on task model(s) {names} is not part of the Perago task contract; "
        "Perago does not guarantee TaskDef or runtime behavior for ConfigDict-configured task models."
    )


def read_only_budget_warning(task: TaskDefinition) -> str | None:
    """The CLI's warning text for a read-only workspace task with a publish budget, or None."""
    if task.workspace is not None and task.workspace.read_only and task.controls.publish_budget is not None:
        return READ_ONLY_PUBLISH_BUDGET_WARNING
    return None


def _model_graph(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    ordered: list[type[BaseModel]] = []
    pending = [root]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        ordered.append(model)
        for field in model.model_fields.values():
            pending.extend(_annotation_models(field.annotation))
    return ordered


def _annotation_models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for argument in get_args(annotation):
        found.extend(_annotation_models(argument))
    origin = get_origin(annotation)
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        found.append(origin)
    return found


# -- controls -------------------------------------------------------------------


def _control_fields(task: TaskDefinition) -> dict[str, Any]:
    retry = task.controls.retry
    timeout = task.controls.timeout
    limits = task.controls.limits
    fields: dict[str, Any] = {
        "retryCount": retry.count,
        "retryLogic": retry.logic,
        "retryDelaySeconds": retry.delay_seconds,
        "maxRetryDelaySeconds": retry.max_delay_seconds,
        "backoffJitterMs": retry.jitter_ms,
        "totalTimeoutSeconds": timeout.total_seconds,
        "timeoutPolicy": timeout.policy,
        "timeoutSeconds": timeout.seconds,
        "responseTimeoutSeconds": _response_timeout_seconds(task),
        "pollTimeoutSeconds": timeout.poll_seconds,
    }
    optional_limits = {
        "concurrentExecLimit": limits.concurrent_exec_limit,
        "rateLimitFrequencyInSeconds": limits.rate_limit_frequency_in_seconds,
        "rateLimitPerFrequency": limits.rate_limit_per_frequency,
    }
    fields.update((key, value) for key, value in optional_limits.items() if value is not None)
    return fields


def _response_timeout_seconds(task: TaskDefinition) -> int:
    response_seconds = task.controls.timeout.response_seconds
    budget = task.controls.publish_budget
    writable = task.workspace is not None and not task.workspace.read_only
    if writable and budget is not None and response_seconds < budget.response_timeout_seconds:
        warnings.warn(
            f"Task {task.name!r} has TaskControls.timeout.response_seconds={response_seconds} "
            f"which is shorter than publish_budget.response_timeout_seconds={budget.response_timeout_seconds}; "
            "responseTimeoutSeconds will use timeout.response_seconds",
            UserWarning,
            # Attribute the warning to whoever called build_taskdef.
            stacklevel=4,
        )
    return response_seconds


# -- schemas --------------------------------------------------------------------


def _schema_wrapper(name: str, properties: dict[str, Any], *, allow_extra: bool) -> dict[str, Any]:
    return {
        "name": name,
        "version": TASKDEF_SCHEMA_VERSION,
        "type": TASKDEF_SCHEMA_TYPE,
        "data": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": allow_extra,
        },
    }


def schema_for_model(model: type[BaseModel], *, allow_extra: bool = False) -> dict[str, Any]:
    """The self-contained JSON schema of `model` as it appears inside a TaskDef.

    Pydantic's validation-mode schema, then: model-level metadata removed (top
    level and object `$defs`), `$ref`s inlined (sibling keys such as a field's
    `description` applied on top), every `title` removed except property names,
    and `additionalProperties` set to `allow_extra` on every object schema with
    `properties`. Recursive models cannot be inlined: `TaskDefinitionError`.
    """
    schema = model.model_json_schema()
    _strip_model_metadata(schema)
    defs = schema.pop("$defs", {})
    inlined = _inline_refs(schema, defs, model)
    _strip_titles(inlined, in_properties=False)
    _force_additional_properties(inlined, allow_extra)
    return inlined


def _strip_model_metadata(schema: dict[str, Any]) -> None:
    _keep_structural_keys(schema)
    definitions = schema.get("$defs")
    if isinstance(definitions, dict):
        for definition in definitions.values():
            if isinstance(definition, dict) and definition.get("type") == "object":
                _keep_structural_keys(definition)


def _keep_structural_keys(schema: dict[str, Any]) -> None:
    for key in [key for key in schema if key not in _STRUCTURAL_SCHEMA_KEYS]:
        del schema[key]


def _inline_refs(value: Any, defs: dict[str, Any], model: type[BaseModel], inlining: tuple[str, ...] = ()) -> Any:
    """A copy of `value` with every `{"$ref": "#/$defs/X", ...}` replaced by X's definition plus the siblings."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_REF_PREFIX):
            name = ref[len(_DEFS_REF_PREFIX) :]
            if name in inlining:
                raise TaskDefinitionError(
                    f"recursive model {name} (reached from {model.__name__}) is not supported; "
                    "Perago task contracts cannot inline self-referencing models"
                )
            replacement = deepcopy(defs[name])
            replacement.update(
                (key, _inline_refs(item, defs, model, inlining)) for key, item in value.items() if key != "$ref"
            )
            return _inline_refs(replacement, defs, model, (*inlining, name))
        return {key: _inline_refs(item, defs, model, inlining) for key, item in value.items()}
    if isinstance(value, list):
        return [_inline_refs(item, defs, model, inlining) for item in value]
    return value


def _strip_titles(value: Any, *, in_properties: bool) -> None:
    # Inside a `properties` mapping the keys are property names: a property may be called "title".
    if isinstance(value, dict):
        if not in_properties:
            value.pop("title", None)
        for key, item in value.items():
            _strip_titles(item, in_properties=key == "properties")
    elif isinstance(value, list):
        for item in value:
            _strip_titles(item, in_properties=in_properties)


def _force_additional_properties(value: Any, allow_extra: bool) -> None:
    if isinstance(value, dict):
        if value.get("type") == "object" and isinstance(value.get("properties"), dict):
            value["additionalProperties"] = allow_extra
        for item in value.values():
            _force_additional_properties(item, allow_extra)
    elif isinstance(value, list):
        for item in value:
            _force_additional_properties(item, allow_extra)


__all__ = [
    "READ_ONLY_PUBLISH_BUDGET_WARNING",
    "TASKDEF_SCHEMA_TYPE",
    "TASKDEF_SCHEMA_VERSION",
    "build_taskdef",
    "config_dict_models",
    "config_dict_warning",
    "read_only_budget_warning",
    "reject_root_models",
    "root_model_classes",
    "schema_for_model",
    "task_model_graph",
    "taskdef_json",
    "write_taskdef",
]
