"""HTTP Basic authentication against the emulator's single access key.

lakeFS answers every unauthenticated API call with 401 and `{"message": "error
authenticating request"}`; only the health check and the setup-state probe are public.
"""

from __future__ import annotations

import base64
import hmac
from typing import Optional

from .errors import ApiError

AUTH_FAILED = "error authenticating request"


class BasicAuth:
    def __init__(self, access_key_id: str, secret_access_key: str, user_id: str) -> None:
        self.user_id = user_id
        token = base64.b64encode(f"{access_key_id}:{secret_access_key}".encode()).decode()
        self._expected = f"Basic {token}".encode()

    def authenticate(self, header: Optional[str]) -> str:
        """Return the user ID for a valid `Authorization` header, else raise a 401."""
        if header is None:
            raise ApiError(401, AUTH_FAILED)
        scheme, _, value = header.strip().partition(" ")
        candidate = f"{scheme.capitalize()} {value.strip()}".encode("utf-8", "replace")
        if not hmac.compare_digest(candidate, self._expected):
            raise ApiError(401, AUTH_FAILED)
        return self.user_id
