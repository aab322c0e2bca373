"""Failures of a Conductor call, split by what the caller should do about them.

A `ConductorUnavailable` is worth retrying (network trouble, 5xx, 429, 408); a
`ConductorRejected` is not (any other 4xx: the same request would be refused again).
Callers branch on the type, never on message text.
"""

from __future__ import annotations

import json

RETRYABLE_STATUSES = frozenset({408, 429})


class ConductorError(Exception):
    """Base of every Conductor client failure."""


class ConductorUnavailable(ConductorError):
    """The request may succeed if sent again later: transport error, 5xx, 408 or 429."""


class ConductorTransportError(ConductorUnavailable):
    """No HTTP answer at all: connect refused, connection dropped, timeout."""


class ConductorRejected(ConductorError):
    """A permanent refusal (4xx other than 408/429); sending it again will not help."""


class ConductorAuthError(ConductorRejected):
    """The server refused our credentials, or no token could be obtained with them."""


class ConductorHttpStatusError(ConductorError):
    """Mixin data for an HTTP answer with an error status."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.message = error_message(body)
        detail = f": {self.message}" if self.message else ""
        super().__init__(f"Conductor answered {method} {path} with HTTP {status}{detail}")


class ConductorServerError(ConductorHttpStatusError, ConductorUnavailable):
    """HTTP 5xx, 408 or 429: the server could not handle the request right now."""


class ConductorClientError(ConductorHttpStatusError, ConductorRejected):
    """HTTP 4xx (not 408/429): the request itself was refused."""


class ConductorAuthRejected(ConductorClientError, ConductorAuthError):
    """HTTP 401/403 that a token renewal did not cure."""


def http_status_error(method: str, path: str, status: int, body: bytes) -> ConductorHttpStatusError:
    """The right error type for a non-2xx answer, decided by status alone."""
    if status >= 500 or status in RETRYABLE_STATUSES:
        return ConductorServerError(method, path, status, body)
    if status in (401, 403):
        return ConductorAuthRejected(method, path, status, body)
    return ConductorClientError(method, path, status, body)


def error_message(body: bytes) -> str:
    """The `message` of Conductor's JSON error body, else the body text (cut to 300 chars)."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace").strip()
    if isinstance(parsed, dict):
        for key in ("message", "error"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
    return body[:300].decode("utf-8", "replace").strip()
