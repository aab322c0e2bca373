"""`perago extract MODULE -o PATH`: the written TaskDef, the printed path, every error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_harness import invoke
from perago import build_taskdef, load_module_task

M = "cli_task_modules"


def expected_text(target: str) -> str:
    return json.dumps(build_taskdef(load_module_task(target)), indent=2) + "\n"


def test_writes_the_taskdef_and_prints_only_the_path(scratch_environment: Path) -> None:
    result = invoke("extract", f"{M}.workspace_ok", "-o", "generated/deep/features.json")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "generated/deep/features.json\n", "")
    written = scratch_environment / "generated" / "deep" / "features.json"
    assert written.read_text(encoding="utf-8") == expected_text(f"{M}.workspace_ok")
    assert json.loads(written.read_text())["name"] == "cli.features.build"


def test_long_option_and_path_normalisation(scratch_environment: Path) -> None:
    result = invoke("extract", f"{M}.free_ok", "--output", "./greet.json")
    assert (result.exit_code, result.stdout) == (0, "greet.json\n")
    absolute = scratch_environment / "abs.json"
    assert invoke("extract", f"{M}.free_ok", "-o", str(absolute)).stdout == f"{absolute}\n"


def test_existing_file_is_overwritten(scratch_environment: Path) -> None:
    target = scratch_environment / "t.json"
    target.write_text("stale")
    assert invoke("extract", f"{M}.free_ok", "-o", "t.json").exit_code == 0
    assert target.read_text(encoding="utf-8") == expected_text(f"{M}.free_ok")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("taskdef.txt", "output must be a JSON file path, for example generated/features.build.json"),
        ("taskdef.JSON", "output must be a JSON file path, for example generated/features.build.json"),
        (".json", "output must be a JSON file path, for example generated/features.build.json"),
        ("taskdef", "output must be a JSON file path, for example generated/features.build.json"),
        ("existing.json", "output must be a JSON file path, not a directory"),
    ],
)
def test_output_path_errors(scratch_environment: Path, output: str, message: str) -> None:
    (scratch_environment / "existing.json").mkdir()
    result = invoke("extract", f"{M}.free_ok", "-o", output)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {message}\n")


def test_configuration_error_first(monkeypatch: pytest.MonkeyPatch, scratch_environment: Path) -> None:
    monkeypatch.setenv("PERAGO_LOG_RETENTION", "0d")
    result = invoke("extract", f"{M}.no_task", "-o", "x.txt")
    assert result.stderr == "error: PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'\n"
    assert result.exit_code == 1


def test_plain_value_error_at_import_is_reported() -> None:
    result = invoke("extract", f"{M}.value_error_at_import", "-o", "x.json")
    assert (result.exit_code, result.stderr) == (1, "error: settings.yaml is missing the 'region' key\n")


def test_schema_and_validation_errors(scratch_environment: Path) -> None:
    schema = invoke("extract", f"{M}.schema_error", "-o", "x.json")
    assert schema.exit_code == 1 and schema.stderr.startswith("error: Cannot generate a JsonSchema")
    validation = invoke("extract", f"{M}.bad_prefix", "-o", "x.json")
    assert validation.exit_code == 1 and validation.stderr.startswith("error: 1 validation error for WorkspaceSpec")
    assert not (scratch_environment / "x.json").exists()


@pytest.mark.parametrize(
    ("target", "exception"),
    [(f"{M}.runtime_error_at_import", RuntimeError), ("cli_task_modules.does_not_exist", ModuleNotFoundError)],
)
def test_non_value_errors_are_not_converted(target: str, exception: type[BaseException]) -> None:
    result = invoke("extract", target, "-o", "x.json")
    assert result.exit_code == 1 and type(result.exception) is exception
    assert "error: " not in result.stderr


def test_warnings_are_printed_and_the_file_still_written(scratch_environment: Path) -> None:
    result = invoke("extract", f"{M}.read_only_budget", "-o", "ro.json")
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: WorkspaceSpec(read_only=True) disables workspace publication")
    assert result.stdout == "ro.json\n"
    assert (scratch_environment / "ro.json").is_file()
    result = invoke("extract", f"{M}.config_dict", "-o", "cd.json")
    assert result.exit_code == 0 and result.stderr.startswith("warning: Pydantic ConfigDict on task model(s) Params, Inner")


def test_root_model_rejected_before_anything_is_written(scratch_environment: Path) -> None:
    result = invoke("extract", f"{M}.root_model", "-o", "root.json")
    assert result.exit_code == 1 and result.stderr.startswith("error: Pydantic RootModel on task model(s) Items")
    assert not (scratch_environment / "root.json").exists()
