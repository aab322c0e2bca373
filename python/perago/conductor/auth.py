"""Orkes token authentication: `POST /token`, then `X-Authorization: <token>` on every call.

Enabled only when both a key id and a secret are configured (from the environment or
`.env`). The token is fetched on first use, renewed proactively after 45 minutes and on
demand when the server says it expired; a `/token` answering 404 means an open-source
server without auth, which switches authentication off for good. The secret is never
logged and never appears in an error message.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from loguru import logger

from perago.conductor.errors import ConductorAuthError, ConductorUnavailable, http_status_error
from perago.conductor.transport import HttpTransport

TOKEN_RENEW_AFTER_SECONDS = 45 * 60
RENEWABLE_TOKEN_ERRORS = frozenset({"EXPIRED_TOKEN", "INVALID_TOKEN"})


class TokenAuth:
    """Holds the current token; thread-safe, one fetch at a time."""

    def __init__(
        self,
        transport: HttpTransport,
        key_id: str,
        key_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._key_id = key_id
        self._key_secret = key_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._fetched_at = 0.0
        self.disabled = False

    def headers(self) -> dict[str, str]:
        """The auth header for the next request (empty when the server has no auth)."""
        token = self._token
        if self.disabled:
            return {}
        if token is None or self._clock() - self._fetched_at >= TOKEN_RENEW_AFTER_SECONDS:
            token = self._refresh(stale=token)
            if token is None:
                return {}
        return {"X-Authorization": token}

    def renew(self, rejected_token: str | None) -> None:
        """Fetch a new token unless another thread already replaced `rejected_token`."""
        self._refresh(stale=rejected_token, force=True)

    def _refresh(self, *, stale: str | None, force: bool = False) -> str | None:
        with self._lock:
            if self.disabled:
                return None
            fresh_enough = self._clock() - self._fetched_at < TOKEN_RENEW_AFTER_SECONDS
            if self._token is not None and self._token != stale and (fresh_enough or not force):
                return self._token
            self._token = self._fetch()
            if self._token is not None:
                self._fetched_at = self._clock()
            return self._token

    def _fetch(self) -> str | None:
        body = json.dumps({"keyId": self._key_id, "keySecret": self._key_secret}).encode()
        response = self._transport.request("POST", "/token", body, {"Accept": "application/json"})
        if response.status == 404:
            logger.warning(
                "Conductor has no /token endpoint; authentication switched off",
                server=self._transport.address.display(),
            )
            self.disabled = True
            return None
        if response.status >= 300:
            error = http_status_error("POST", "/token", response.status, response.body)
            if isinstance(error, ConductorUnavailable):
                raise error
            raise ConductorAuthError(
                f"Conductor refused the auth key id {self._key_id!r} (HTTP {response.status}); "
                "check CONDUCTOR_AUTH_KEY and CONDUCTOR_AUTH_SECRET"
            )
        try:
            token = json.loads(response.body)["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConductorAuthError("Conductor's /token answer has no token field") from exc
        if not isinstance(token, str) or not token:
            raise ConductorAuthError("Conductor's /token answer has an empty token")
        return token


def renewable_rejection(status: int, body: bytes) -> bool:
    """True for the 401/403 answers that mean "your token expired or is invalid"."""
    if status not in (401, 403) or not body:
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("error") in RENEWABLE_TOKEN_ERRORS
