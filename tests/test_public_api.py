"""The names perago 0.6 exports are all importable from `perago`, loaded on first use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import perago

PERAGO_06_NAMES = {
    "task", "TaskDefinition", "load_module_task",
    "WorkspaceSpec", "require_file", "require_dir", "require_glob", "forbid_glob", "check_guardrails",
    "TaskControls", "RetryPolicy", "TimeoutPolicy", "ExecutionLimits", "PublishBudget",
    "MetricSpec", "MetricRecorder",
    "WorkspaceInput", "WorkspaceOutput",
    "TaskDefinitionError", "RuntimeConfigError", "TaskInputError", "TaskExecutionError", "TaskFailed",
    "TaskTerminalError", "GuardrailViolation", "PreGuardrailViolation", "PostGuardrailViolation",
    "PublishFenceError", "StaleAttemptError",
    "build_taskdef", "write_taskdef",
    "load_runtime_config", "RuntimeConfig", "ConductorConfig", "LakeFSConfig", "MetricsConfig", "ExecutionMode",
    "__version__",
}  # fmt: skip


def test_every_06_name_resolves_from_the_package() -> None:
    for name in PERAGO_06_NAMES | {"start"}:
        assert getattr(perago, name) is not None, name
    assert PERAGO_06_NAMES | {"start"} <= set(perago.__all__)
    assert set(perago.__all__) <= set(dir(perago))


def test_start_is_the_function_even_after_its_module_is_imported() -> None:
    import perago.launch

    assert perago.start is perago.launch.start
    assert callable(perago.start)


def test_type_checking_imports_list_the_same_names_as_the_lazy_table() -> None:
    tree = ast.parse(Path(perago.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    names = {alias.name for node in guarded.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert names == set(perago._MODULE_OF)


def test_unknown_names_raise_attribute_error() -> None:
    try:
        perago.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_task_is_the_decorator_even_after_its_module_is_imported() -> None:
    code = "import sys, perago.task; from perago import task; print(task is sys.modules['perago.task'].task)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "True\n"


def test_importing_perago_does_not_import_the_runtime() -> None:
    runtime = ("loguru", "perago.launch", "perago.config", "perago.taskdef", "lakefs_sdk")
    code = f"import sys, perago; print(sorted(m for m in {runtime!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
