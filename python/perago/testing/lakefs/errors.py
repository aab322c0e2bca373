"""The one exception the emulator's core raises; the HTTP layer turns it into a response.

Keeping the status next to the message lets the graph code state lakeFS's error mapping
(spec/workspace.md §6.3) at the point where the condition is detected.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An API failure with lakeFS's status code and JSON body (`{"message": ...}` unless given)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body if body is not None else {"message": message}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


# Messages lakeFS (graveler) uses for the conditions clients branch on.
NO_CHANGES = "no changes"
DIRTY_BRANCH = "uncommitted changes (dirty branch)"
CONFLICT_FOUND = "conflict found"
WRITE_PROTECTED = "cannot write to protected branch"
COMMIT_PROTECTED = "cannot commit to protected branch"
READ_ONLY_REPOSITORY = "repository is read-only"
