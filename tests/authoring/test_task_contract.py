"""TaskContract: the per-task validators the executor calls for every attempt.

Error texts and extra-key handling are compared with perago 0.6.1 in test_oracle_cases;
these tests cover what the oracle comparison cannot see: reuse, instance types,
JSON-mode results, ConfigDict overrides and misuse of the output builder.
"""

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from perago import TaskInputError, WorkspaceInput, WorkspaceSpec, task

REF = {"repository": "mix-7781", "branch": "main", "refType": "commit", "ref": "a41f09c2d7"}


class Colour(Enum):
    RED = "red"


class ClosedInner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: int


class ClosedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inner: ClosedInner
    when: dt.date


class OpenResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    colour: Colour
    at: dt.datetime
    size: Optional[float] = None
    renamed: int = Field(default=0, alias="Renamed")


def define(strict: bool = False, workspace: bool = False):
    if workspace:

        def ws_body(workspace: Path, params: ClosedParams) -> OpenResult:
            raise AssertionError("not called")

        task(name="c.ws", owner_email="o", workspace=WorkspaceSpec(), strict_params=strict)(ws_body)
        return ws_body.__perago_task__

    def body(params: ClosedParams) -> OpenResult:
        raise AssertionError("not called")

    task(name="c.free", owner_email="o", strict_params=strict)(body)
    return body.__perago_task__


def test_contract_is_built_once_per_definition() -> None:
    definition = define()
    assert definition.contract is definition.contract
    assert define().contract is not definition.contract


def test_params_are_instances_of_the_declared_model() -> None:
    params = define().contract.validate_params({"inner": {"x": "1"}, "when": "2026-05-20"})
    assert type(params) is ClosedParams
    assert type(params.inner) is ClosedInner
    assert params.when == dt.date(2026, 5, 20)


def test_non_strict_params_drop_extras_despite_forbidding_models() -> None:
    params = define().contract.validate_params({"inner": {"x": 1, "y": 2}, "when": "2026-05-20", "z": 3})
    assert params.model_dump() == {"inner": {"x": 1}, "when": dt.date(2026, 5, 20)}
    assert params.model_extra is None


def test_strict_params_reject_extras() -> None:
    with pytest.raises(ValidationError, match=r"inner\.y\n  Extra inputs are not permitted"):
        define(strict=True).contract.validate_params({"inner": {"x": 1, "y": 2}, "when": "2026-05-20"})


def test_declared_model_config_is_left_alone() -> None:
    define().contract.validate_params({"inner": {"x": 1}, "when": "2026-05-20"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ClosedParams.model_validate({"inner": {"x": 1}, "when": "2026-05-20", "z": 1})


def test_results_forbid_extras_even_when_the_model_allows_them() -> None:
    raw = {"colour": "red", "at": "2026-05-20T14:30:15+08:00", "bonus": 1}
    with pytest.raises(ValidationError, match="bonus\n  Extra inputs are not permitted"):
        define().contract.validate_result(raw)


def test_result_payload_is_json_mode_by_field_name() -> None:
    contract = define().contract
    result = contract.validate_result({"colour": "red", "at": "2026-05-20T14:30:15+08:00", "Renamed": 4})
    assert contract.output(result) == {
        "result": {"colour": "red", "at": "2026-05-20T14:30:15+08:00", "size": None, "renamed": 4}
    }


def test_workspace_output_comes_first() -> None:
    contract = define(workspace=True).contract
    workspace = contract.validate_workspace(REF)
    result = contract.validate_result({"colour": Colour.RED, "at": dt.datetime(2026, 1, 1)})
    output = contract.output(result, workspace.published_output("c0d5e6b190"))
    assert list(output) == ["workspace", "result"]
    assert output["workspace"] == {**REF, "ref": "c0d5e6b190"}


def test_split_input_ignores_other_keys() -> None:
    assert define().contract.split_input({"params": {"a": 1}, "workspace": "stray", "x": 0}) == (None, {"a": 1})
    assert define(workspace=True).contract.split_input({"workspace": REF, "params": 1, "x": 0}) == (REF, 1)


@pytest.mark.parametrize("input_data", [None, [], "params", 3])
def test_non_object_input_is_a_task_input_error(input_data: object) -> None:
    with pytest.raises(TaskInputError, match="workspace-free task input must contain params"):
        define().contract.split_input(input_data)
    with pytest.raises(TaskInputError, match="workspace task input must contain workspace and params"):
        define(workspace=True).contract.split_input(input_data)


def test_validate_workspace_returns_a_workspace_input() -> None:
    assert type(define(workspace=True).contract.validate_workspace(REF)) is WorkspaceInput


def test_output_kind_must_match_the_task_kind() -> None:
    free, with_workspace = define().contract, define(workspace=True).contract
    result = free.validate_result({"colour": "red", "at": "2026-05-20T14:30:15Z"})
    reference = WorkspaceInput.model_validate(REF).published_output("c")
    with pytest.raises(TaskInputError, match="workspace-free output cannot carry a workspace reference"):
        free.output(result, reference)
    with pytest.raises(TaskInputError, match="workspace output can only be built with a workspace reference"):
        with_workspace.output(result)


class Later(BaseModel):
    child: "Child"


def test_models_completed_after_decoration_are_usable() -> None:
    def body(params: Later) -> Later:
        return params

    task(name="c.later", owner_email="o")(body)

    class Child(BaseModel):
        n: int

    Later.model_rebuild(_types_namespace={"Child": Child})
    params = body.__perago_task__.contract.validate_params({"child": {"n": "2"}})
    assert params.child.n == 2
