"""Keeping credentials out of anything perago writes: log records, failure reasons.

`SecretStr` already hides the secrets of a `RuntimeConfig` from reprs and JSON dumps; this
is the second line, for the text nobody controls — an exception from an HTTP library that
echoes a URL with credentials, a task author's `logger.info(config)` of a raw value. Every
occurrence of a known secret is replaced by `**********`, and so is the HTTP Basic token
built from the LakeFS key pair (what a client would put in an `Authorization` header).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perago.config import RuntimeConfig

MASK = "**********"
_JSON_SCALARS = (bool, int, float, type(None))


class SecretRedactor:
    """Replaces every known secret value by `MASK` in text and in JSON-like structures."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another one is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def contains_secret(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def redact_value(self, value: Any) -> Any:
        """A redacted copy: strings masked, dicts/lists/tuples walked, other objects turned
        into their (masked) `str`, which is what a JSON log line would show anyway."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, _JSON_SCALARS):
            return value
        if isinstance(value, Mapping):
            return {self.redact(str(k)): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(item) for item in value]
        text = str(value)
        return self.redact(text) if self.contains_secret(text) else value


def config_secrets(config: RuntimeConfig) -> list[str]:
    """The secret strings a `RuntimeConfig` carries (empty when no credentials are set)."""
    secrets: list[str] = []
    if config.lakefs is not None:
        secret = config.lakefs.secret_access_key.get_secret_value()
        pair = f"{config.lakefs.access_key_id}:{secret}".encode()
        secrets += [secret, base64.b64encode(pair).decode("ascii")]
    if config.conductor is not None and config.conductor.auth_secret is not None:
        secrets.append(config.conductor.auth_secret.get_secret_value())
    return secrets
