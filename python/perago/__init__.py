"""perago: Conductor task workers as typed Python functions, over LakeFS-versioned workspaces."""

from perago._core import __version__
from perago.config import ConductorConfig, ExecutionMode, LakeFSConfig, MetricsConfig, RuntimeConfig, load_runtime_config
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
from perago.taskdef import build_taskdef, write_taskdef
from perago.workspace_spec import WorkspaceSpec
from perago.start import start

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
    "start",
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
    "build_taskdef",
    "write_taskdef",
    "WorkspaceSpec",
    "load_runtime_config",
    "RuntimeConfig",
    "ConductorConfig",
    "LakeFSConfig",
    "MetricsConfig",
    "ExecutionMode",
]
