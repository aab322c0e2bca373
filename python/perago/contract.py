"""The Conductor input/output contract of one task: what an attempt accepts and returns.

The executor calls these for every attempt, so everything that depends only on the
task is prepared once in `TaskContract` (reach it as `task.contract`) and each
call goes straight to the Pydantic core validators and serializers.

Rules (perago 0.6): the input envelope needs `workspace` and `params` (workspace
tasks) or `params`; other top-level keys are ignored. `params` drop unknown keys at
every level unless the task is `strict_params`, whatever the models' own `extra`
setting. Results always forbid unknown keys, and are serialized in JSON mode by
field name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from perago.errors import TaskInputError
from perago.models import WorkspaceInput, WorkspaceOutput

if TYPE_CHECKING:
    from perago.task import TaskDefinition

WORKSPACE_INPUT_KEYS_MISSING = "workspace task input must contain workspace and params"
PARAMS_INPUT_KEY_MISSING = "workspace-free task input must contain params"


class TaskContract:
    """Validators and output builders of one `TaskDefinition`.

    Pydantic `ValidationError`s propagate unchanged (the attempt then fails with
    their text); envelope problems raise `TaskInputError`.
    """

    __slots__ = (
        "_dump_result",
        "_output_model",
        "_dump_workspace",
        "_has_workspace",
        "_params_extra",
        "_validate_params",
        "_validate_result",
        "_validate_workspace",
    )

    def __init__(self, task: TaskDefinition) -> None:
        self._has_workspace = task.has_workspace
        self._params_extra = "forbid" if task.strict_params else "ignore"
        self._validate_params = _core_validator(task.params_model)
        self._validate_result = _core_validator(task.output_model)
        self._output_model = task.output_model
        self._dump_result = _core_serializer(task.output_model)
        self._validate_workspace = _core_validator(WorkspaceInput)
        self._dump_workspace = _core_serializer(WorkspaceOutput)

    def split_input(self, input_data: object) -> tuple[Any, Any]:
        """`(raw workspace, raw params)` of a Conductor `inputData`; raw workspace is `None` for workspace-free tasks.

        Raises `TaskInputError` when a required key is missing (or `inputData`
        is not an object at all).
        """
        if self._has_workspace:
            if not _is_mapping(input_data) or "workspace" not in input_data or "params" not in input_data:
                raise TaskInputError(WORKSPACE_INPUT_KEYS_MISSING)
            return input_data["workspace"], input_data["params"]
        if not _is_mapping(input_data) or "params" not in input_data:
            raise TaskInputError(PARAMS_INPUT_KEY_MISSING)
        return None, input_data["params"]

    def validate_workspace(self, raw_workspace: object) -> WorkspaceInput:
        """The workspace reference of the input (commit refs only, unknown keys rejected)."""
        return self._validate_workspace(raw_workspace)

    def validate_params(self, raw_params: object) -> BaseModel:
        """The params model instance handed to the task function (lax mode)."""
        return self._validate_params(raw_params, extra=self._params_extra)

    def validate_result(self, raw_result: object) -> BaseModel:
        """The output model instance for what the task function returned, unknown keys forbidden.

        A model instance of any class is first dumped to a dict by field name, so
        it is re-validated like a mapping.
        """
        # `type(...) is` first: the usual case, without the ABC machinery of `isinstance`.
        if type(raw_result) is self._output_model or isinstance(raw_result, BaseModel):
            raw_result = raw_result.__pydantic_serializer__.to_python(raw_result)
        return self._validate_result(raw_result, extra="forbid")

    def result_payload(self, result: BaseModel) -> dict[str, Any]:
        """The JSON-ready `result` value (JSON mode, field names) of a validated result."""
        return self._dump_result(result, mode="json")

    def output(self, result: BaseModel, workspace: WorkspaceOutput | None = None) -> dict[str, Any]:
        """The Conductor `output` of a completed attempt: `{"workspace": ..., "result": ...}` or `{"result": ...}`.

        `workspace` is required exactly for workspace tasks.
        """
        if self._has_workspace:
            if workspace is None:
                raise TaskInputError("workspace output can only be built with a workspace reference")
            return {
                "workspace": self._dump_workspace(workspace, mode="json"),
                "result": self._dump_result(result, mode="json"),
            }
        if workspace is not None:
            raise TaskInputError("workspace-free output cannot carry a workspace reference")
        return {"result": self._dump_result(result, mode="json")}


def _is_mapping(value: object) -> bool:
    """`isinstance(value, Mapping)`, without the ABC check for the dicts JSON parsing yields."""
    return type(value) is dict or isinstance(value, Mapping)


def _core_validator(model: type[BaseModel]) -> Any:
    _ensure_complete(model)
    return model.__pydantic_validator__.validate_python


def _core_serializer(model: type[BaseModel]) -> Any:
    _ensure_complete(model)
    return model.__pydantic_serializer__.to_python


def _ensure_complete(model: type[BaseModel]) -> None:
    # A model with unresolved forward references has placeholder validators until
    # rebuilt; rebuilding here raises Pydantic's own error if it still cannot be.
    if not model.__pydantic_complete__:
        model.model_rebuild()


__all__ = ["PARAMS_INPUT_KEY_MISSING", "WORKSPACE_INPUT_KEYS_MISSING", "TaskContract"]
