"""The exception types perago raises and task authors raise.

The hierarchy and constructors are perago 0.6's: existing task modules catch and
raise these by name, and the runtime maps them to Conductor statuses.
"""

from __future__ import annotations


class TaskDefinitionError(ValueError):
    """A task contract problem: decorator, loader, TaskDef building or guardrail helpers."""


class RuntimeConfigError(ValueError):
    """An environment, `.env`, writable-root or supervisor problem."""


class TaskInputError(ValueError):
    """The Conductor input envelope of an attempt is unusable."""


class TaskExecutionError(RuntimeError):
    """Base of failures a task author raises on purpose; `reason` is what Conductor shows."""

    def __init__(self, reason: str) -> None:
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, not {type(reason).__name__}")
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class TaskFailed(TaskExecutionError):
    """A retryable failure: Conductor status FAILED."""


class TaskTerminalError(TaskExecutionError):
    """A non-retryable failure: Conductor status FAILED_WITH_TERMINAL_ERROR."""


class GuardrailViolation(RuntimeError):
    """A workspace guardrail did not hold."""


class PreGuardrailViolation(GuardrailViolation):
    """A `pre` guardrail failed after download: the input itself is wrong, so terminal."""


class PostGuardrailViolation(GuardrailViolation):
    """A `post` guardrail failed after the body: nothing is published, retryable."""


class PublishFenceError(RuntimeError):
    """The target branch moved under the attempt; publication was refused."""


class StaleAttemptError(RuntimeError):
    """Conductor no longer considers this attempt current."""


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
]
