"""Failures the workspace runtime raises, typed so the attempt runner can classify them.

Deterministic contract violations (an unmappable object key, a case collision, a symlink
left by the task, a non-commit input ref) subclass `TaskTerminalError`: retrying the
attempt cannot help, so Conductor gets FAILED_WITH_TERMINAL_ERROR (spec W-12). Everything
else is a plain `RuntimeError` and stays retryable (FAILED).
"""

from __future__ import annotations

from perago.errors import PublishFenceError, TaskTerminalError


class WorkspaceContractError(TaskTerminalError):
    """The input ref or the task's local workspace breaks the workspace contract."""


class LakeFSError(RuntimeError):
    """A lakeFS call failed; `status` is the HTTP status, or None for transport errors.

    The message names the operation, the status and the server's own message only: it
    never carries request headers, so the credentials cannot leak into a failure reason.
    """

    def __init__(self, operation: str, status: int | None, detail: str) -> None:
        self.operation = operation
        self.status = status
        self.detail = detail
        where = f"HTTP {status}" if status is not None else "transport error"
        super().__init__(f"lakeFS {operation} failed ({where}): {detail}")

    @property
    def outcome_unknown(self) -> bool:
        """True when the request may have been applied although no answer came back."""
        return self.status is None or self.status >= 500


class PublishDeadlineExceeded(RuntimeError):
    """The end-to-end publish deadline (from the PublishBudget) ran out."""


class ForeignCommitError(PublishFenceError):
    """The target branch holds a commit this logical task did not write; nothing was replaced."""


__all__ = [
    "ForeignCommitError",
    "LakeFSError",
    "PublishDeadlineExceeded",
    "WorkspaceContractError",
]
