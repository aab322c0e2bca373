"""perago: Conductor task workers as typed Python functions, over LakeFS-versioned workspaces.

The public names of perago 0.6 are all importable from here. The authoring API is
imported eagerly (every task module needs it, and `perago.task` is both a module and the
decorator, so it must be bound here before anyone imports the submodule); the runtime
pieces (configuration, TaskDef extraction, `start`) load on first use, so an executor
process pays only for what it touches and boots — and restarts — faster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from perago._core import __version__
from perago.errors import (
    GuardrailViolation,
    PostGuardrailViolation,
    PreGuardrailViolation,
    PublishFenceError,
    RuntimeConfigError,
    StaleAttemptError,
    TaskDefinitionError,
    TaskExecutionError,
    TaskFailed,
    TaskInputError,
    TaskTerminalError,
)
from perago.controls import ExecutionLimits, PublishBudget, RetryPolicy, TaskControls, TimeoutPolicy
from perago.guards import check_guardrails, forbid_glob, require_dir, require_file, require_glob
from perago.metrics import MetricRecorder, MetricSpec
from perago.models import WorkspaceInput, WorkspaceOutput
from perago.task import TaskDefinition, load_module_task, task
from perago.workspace_spec import WorkspaceSpec

if TYPE_CHECKING:
    from perago.config import (
        ConductorConfig,
        ExecutionMode,
        LakeFSConfig,
        MetricsConfig,
        RuntimeConfig,
        load_runtime_config,
    )
    from perago.launch import start
    from perago.taskdef import build_taskdef, write_taskdef

_LAZY_MODULES = {
    "perago.config": (
        "ConductorConfig",
        "ExecutionMode",
        "LakeFSConfig",
        "MetricsConfig",
        "RuntimeConfig",
        "load_runtime_config",
    ),
    "perago.launch": ("start",),
    "perago.taskdef": ("build_taskdef", "write_taskdef"),
}
_MODULE_OF = {name: module for module, names in _LAZY_MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'perago' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "GuardrailViolation",
    "PostGuardrailViolation",
    "PreGuardrailViolation",
    "PublishFenceError",
    "RuntimeConfigError",
    "StaleAttemptError",
    "TaskDefinitionError",
    "TaskExecutionError",
    "TaskFailed",
    "TaskInputError",
    "TaskTerminalError",
    "__version__",
    "ExecutionLimits",
    "PublishBudget",
    "RetryPolicy",
    "TaskControls",
    "TimeoutPolicy",
    "check_guardrails",
    "forbid_glob",
    "require_dir",
    "require_file",
    "require_glob",
    "MetricRecorder",
    "MetricSpec",
    "WorkspaceInput",
    "WorkspaceOutput",
    "TaskDefinition",
    "load_module_task",
    "task",
    "WorkspaceSpec",
    *_MODULE_OF,
]
