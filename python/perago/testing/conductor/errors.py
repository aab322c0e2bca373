"""Conductor's error answers (spec conductor-api.md §1.1).

Handlers raise these; the HTTP layer turns them into the status and JSON body a real
server sends. The exception class decides the status exactly as OSS's
`ApplicationExceptionMapper` does, so a mistake here is a contract bug, not a style choice.
"""

from __future__ import annotations

import socket
from typing import Any

INSTANCE = socket.gethostname()


class ConductorError(Exception):
    """An error the server reports with the §1.1 body."""

    status = 500
    retryable = False
    with_instance = True

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.message is not None:
            body["message"] = self.message
        if self.with_instance:
            body["instance"] = INSTANCE
        body["retryable"] = self.retryable
        return body


class NotFound(ConductorError):
    """Entity not found (task, workflow, definitions): 404."""

    status = 404


class Conflict(ConductorError):
    """Duplicate definition or illegal state transition: 409."""

    status = 409


class BadRequest(ConductorError):
    """`IllegalArgumentException` thrown by the server: 400."""

    status = 400


class ValidationFailed(ConductorError):
    """Bean validation of a service argument: 400 with `validationErrors`, no `instance`."""

    status = 400
    with_instance = False

    def __init__(self, errors: list[tuple[str, str, Any]]) -> None:
        super().__init__("Validation failed, check below errors for detail.")
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body = super().body()
        rendered = []
        for path, message, invalid in self.errors:
            entry: dict[str, Any] = {"path": path, "message": message}
            if invalid is not None:
                entry["invalidValue"] = invalid
            rendered.append(entry)
        body["validationErrors"] = rendered
        return body


class ServerError(ConductorError):
    """Anything unmapped (JSON parse errors, null dereferences, type mismatches): 500."""

    status = 500


class TransientError(ConductorError):
    """A transient internal error: 500 with `retryable: true` (used by fault injection)."""

    status = 500
    retryable = True

    def __init__(self, message: str | None = None, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class MethodNotAllowed(ConductorError):
    """Wrong method on an existing path: 405 from OSS 3.32 (500 before, see versions.py)."""

    status = 405


class Unauthorized(ConductorError):
    """Orkes-style token rejection: 401 with an `error` code the SDK looks for."""

    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"] = self.code
        return body


def json_parse_error(detail: str) -> ServerError:
    """What Spring answers for a body Jackson cannot read."""
    return ServerError(f"JSON parse error: {detail}")


def missing_body(method_signature: str) -> ServerError:
    return ServerError(f"Required request body is missing: {method_signature}")
