"""TaskDef extraction against perago 0.6.1: the files `perago extract` wrote and what it printed.

golden/<module>.json is the oracle's TaskDef for authoring_tasks.<module>;
golden/<module>.stderr holds its diagnostics (see scripts/generate_taskdef_goldens.py).
"""

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
from pydantic.errors import PydanticInvalidForJsonSchema

from perago import TaskDefinitionError, build_taskdef, load_module_task, write_taskdef
from perago.taskdef import config_dict_warning, read_only_budget_warning, reject_root_models, task_model_graph

GOLDEN_ROOT = Path(__file__).parent / "golden"
MODULES_ROOT = Path(__file__).parent / "modules" / "authoring_tasks"
TASK_MODULES = sorted(path.stem for path in MODULES_ROOT.glob("*.py") if path.stem != "__init__")
GOLDEN_TASKDEFS = sorted(path.stem for path in GOLDEN_ROOT.glob("*.json") if path.stem != "cases")


def load(module: str):
    return load_module_task(f"authoring_tasks.{module}")


def oracle_diagnostics(module: str) -> list[str]:
    path = GOLDEN_ROOT / f"{module}.stderr"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def our_diagnostics(module: str) -> list[str]:
    """What our CLI's `extract` would print to stderr, assembled from the library functions it calls."""
    task = load(module)
    lines: list[str] = []
    if (text := read_only_budget_warning(task)) is not None:
        lines.append(f"warning: {text}")
    try:
        reject_root_models(task)
        if (text := config_dict_warning(task)) is not None:
            lines.append(f"warning: {text}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            build_taskdef(task)
        lines.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    except (TaskDefinitionError, PydanticInvalidForJsonSchema) as exc:
        lines.extend(f"error: {exc}".splitlines())
    return lines


def test_every_task_module_was_recorded() -> None:
    # A module the oracle failed on without a diagnostic would silently escape the comparison.
    assert all(module in GOLDEN_TASKDEFS or oracle_diagnostics(module) for module in TASK_MODULES)
    assert len(GOLDEN_TASKDEFS) >= 18


@pytest.mark.parametrize("module", GOLDEN_TASKDEFS)
def test_written_taskdef_is_byte_identical(module: str, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        written = write_taskdef(load(module), tmp_path / "nested" / f"{module}.json")
    assert written == tmp_path / "nested" / f"{module}.json"
    assert written.read_bytes() == (GOLDEN_ROOT / f"{module}.json").read_bytes()


@pytest.mark.parametrize("module", [m for m in TASK_MODULES if m != "recursive_nested"])
def test_diagnostics_match(module: str) -> None:
    assert our_diagnostics(module) == oracle_diagnostics(module)


def test_nested_recursive_model_is_a_definition_error_not_a_crash() -> None:
    # perago 0.6.1 recursed until RecursionError (golden/recursive_nested.stderr); we name the model.
    assert oracle_diagnostics("recursive_nested") == [
        "traceback: RecursionError: maximum recursion depth exceeded while calling a Python object"
    ]
    with pytest.raises(TaskDefinitionError, match=r"recursive model Folder \(reached from TreeParams\)"):
        build_taskdef(load("recursive_nested"))


def test_top_level_self_reference_gives_an_empty_schema() -> None:
    taskdef = build_taskdef(load("generic_models"))
    assert taskdef["outputSchema"]["data"]["properties"]["result"] == {}


def test_build_taskdef_is_json_compatible_and_ordered() -> None:
    taskdef = build_taskdef(load("check_license"))
    assert list(taskdef) == [
        "name", "ownerEmail", "retryCount", "retryLogic", "retryDelaySeconds", "maxRetryDelaySeconds",
        "backoffJitterMs", "totalTimeoutSeconds", "timeoutPolicy", "timeoutSeconds", "responseTimeoutSeconds",
        "pollTimeoutSeconds", "inputKeys", "outputKeys", "inputSchema", "outputSchema",
    ]  # fmt: skip
    assert json.loads(json.dumps(taskdef)) == taskdef


def test_budget_warning_points_at_the_caller() -> None:
    expected = r"response_seconds=100 .* publish_budget.response_timeout_seconds=155;"
    with pytest.warns(UserWarning, match=expected) as caught:
        build_taskdef(load("render_stems_tight"))
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name]


def test_budget_equal_to_response_timeout_does_not_warn() -> None:
    task = load("render_stems_tight")
    budget = task.controls.publish_budget
    timeout = task.controls.timeout.model_copy(update={"response_seconds": budget.response_timeout_seconds})
    controls = task.controls.model_copy(update={"timeout": timeout})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taskdef = build_taskdef(dataclasses.replace(task, controls=controls))
    assert taskdef["responseTimeoutSeconds"] == 155


def test_read_only_budget_never_warns_and_is_not_serialized() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taskdef = build_taskdef(load("readonly_workspace"))
    assert taskdef["responseTimeoutSeconds"] == 10
    assert "publish" not in json.dumps(taskdef).lower()


def test_model_graph_order_is_params_then_output_depth_first() -> None:
    names = [model.__name__ for model in task_model_graph(load("configdict_models"))]
    assert names == [
        "ConfiguredParams", "Forbidding", "Frozen", "Stripping", "Plain", "ConfiguredResult", "Allowing",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["out.JSON", "out.txt", ".json", "out"])
def test_write_taskdef_requires_a_json_suffix(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="output must be a JSON file path, for example"):
        write_taskdef(load("check_license"), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_write_taskdef_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ValueError, match="output must be a JSON file path, not a directory"):
        write_taskdef(load("check_license"), tmp_path / "dir.json")


def test_write_taskdef_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    target.write_text("stale", encoding="utf-8")
    write_taskdef(load("check_license"), target)
    assert target.read_bytes() == (GOLDEN_ROOT / "check_license.json").read_bytes()


def test_failed_build_leaves_no_file_or_directory(tmp_path: Path) -> None:
    with pytest.raises(TaskDefinitionError, match="RootModel"):
        write_taskdef(load("root_model_params"), tmp_path / "new" / "t.json")
    assert not (tmp_path / "new").exists()

