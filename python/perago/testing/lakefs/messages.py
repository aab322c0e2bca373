"""Request and response values passed between the HTTP layer and the endpoint handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .bodies import BodyReader
from .errors import bad_request

_JSON_LIMIT = 16 << 20
_TRUE = ("true", "1", "yes")


@dataclass
class Request:
    method: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: BodyReader
    user: str = ""

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str, default: bool = False) -> bool:
        values = self.query.get(name)
        if not values:
            return default
        return values[-1].strip().lower() in _TRUE

    def int_arg(self, name: str, default: int) -> int:
        raw = self.arg(name)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f"{name}: invalid integer {raw!r}") from None

    def required(self, name: str) -> str:
        value = self.arg(name)
        if not value:
            raise bad_request(f"{name}: required value")
        return value

    def json(self) -> dict[str, Any]:
        raw = self.body.read_all(_JSON_LIMIT)
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise bad_request(f"request body is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise bad_request("request body must be a JSON object")
        return data


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: Optional[tuple[Path, int, int]] = None  # (path, offset, length) streamed with sendfile


def json_response(status: int, data: Any, headers: Optional[dict[str, str]] = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def empty(status: int = 204) -> Response:
    return Response(status)


def text(status: int, value: str, content_type: str = "text/html") -> Response:
    return Response(status, value.encode(), {"Content-Type": content_type})


# Typed field readers for JSON bodies: a wrong type is a 400 naming the field.

def field_str(data: dict[str, Any], name: str, required: bool = False, default: Optional[str] = None) -> Optional[str]:
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name}: required value")
        return default
    if not isinstance(value, str):
        raise bad_request(f"{name}: must be a string")
    return value


def field_bool(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{name}: must be a boolean")
    return value


def field_int(data: dict[str, Any], name: str, default: Optional[int] = None) -> Optional[int]:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name}: must be an integer")
    return value


def field_str_map(data: dict[str, Any], name: str) -> dict[str, str]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad_request(f"{name}: must be an object of string values")
    return dict(value)


def field_str_list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{name}: must be a list of strings")
    return list(value)
