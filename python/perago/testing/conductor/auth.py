"""Orkes-style token authentication, off unless keys are configured (spec §2.15, §7.2).

`POST /api/token {keyId, keySecret}` issues a token; every other request must carry it
raw in `X-Authorization`. Rejections are 401 with the `error` code the SDK keys on
(`EXPIRED_TOKEN`, `INVALID_TOKEN`). Token lifetimes run on the emulator clock, so a test
expires a token by advancing a ManualClock.
"""

from __future__ import annotations

import secrets

from perago.testing.conductor.clock import Clock
from perago.testing.conductor.errors import Unauthorized

OPEN_PATHS = frozenset({"/health", "/api/health", "/api/token"})


class TokenAuth:
    def __init__(self, keys: dict[str, str], ttl_seconds: int, clock: Clock) -> None:
        self._keys = dict(keys)
        self._ttl_ms = ttl_seconds * 1000
        self._clock = clock
        self._expiry: dict[str, int] = {}

    def issue(self, key_id: object, key_secret: object) -> str:
        if not isinstance(key_id, str) or self._keys.get(key_id) != key_secret:
            raise Unauthorized("INVALID_CREDENTIALS", "Invalid keyId or keySecret")
        token = f"emulated.{secrets.token_urlsafe(24)}"
        self._expiry[token] = self._clock.now_ms() + self._ttl_ms
        return token

    def check(self, token: str | None) -> None:
        if not token:
            raise Unauthorized("INVALID_TOKEN", "Missing X-Authorization token")
        expiry = self._expiry.get(token)
        if expiry is None:
            raise Unauthorized("INVALID_TOKEN", "Invalid token")
        if self._clock.now_ms() >= expiry:
            raise Unauthorized("EXPIRED_TOKEN", "Token expired")
