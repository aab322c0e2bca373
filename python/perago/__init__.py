"""perago: Conductor task workers as typed Python functions, over LakeFS-versioned workspaces."""

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
]
