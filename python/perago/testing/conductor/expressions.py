"""`${...}` input and output mapping (spec conductor-api.md §6.2, §6.3).

A WorkflowTask's `inputParameters` (and a WorkflowDef's `outputParameters`) are
templates. They are compiled once per definition into a small tree so evaluating them
for each scheduled task costs only the lookups, never a re-scan of the strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Resolver = Callable[[str, list[str | int]], Any]
"""Looks up (root name, remaining path) in the workflow document; returns None when absent."""

_EXPRESSION = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_PATH_TOKEN = re.compile(r"\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|([^.\[\]]+)")

TASK_ID_PLACEHOLDER = "CPEWF_TASK_ID"
_MISSING = object()


def _parse_path(text: str) -> list[str | int]:
    tokens: list[str | int] = []
    for index, quoted, dquoted, name in _PATH_TOKEN.findall(text.strip()):
        if index:
            tokens.append(int(index))
        else:
            tokens.append(quoted or dquoted or name)
    return tokens


class _Lookup:
    __slots__ = ("path",)

    def __init__(self, path: list[str | int]) -> None:
        self.path = path


class _Concat:
    __slots__ = ("parts",)

    def __init__(self, parts: list[str | _Lookup]) -> None:
        self.parts = parts


class _Mapping:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


class _Sequence:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class _Constant:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def compile_template(value: Any) -> Any:
    """Compile a JSON value whose strings may contain `${...}` expressions."""
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, dict):
        return _Mapping([(key, compile_template(item)) for key, item in value.items()])
    if isinstance(value, list):
        return _Sequence([compile_template(item) for item in value])
    return _Constant(value)


def _compile_string(text: str) -> Any:
    if "${" not in text:
        return _Constant(text)
    parts: list[str | _Lookup] = []
    position = 0
    for match in _EXPRESSION.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        if match.group(0) == "$${":
            parts.append("${")
        else:
            parts.append(_Lookup(_parse_path(match.group(1))))
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    if len(parts) == 1 and isinstance(parts[0], _Lookup):
        return parts[0]
    if all(isinstance(part, str) for part in parts):
        return _Constant("".join(parts))  # type: ignore[arg-type]
    return _Concat(parts)


def evaluate(compiled: Any, resolve: Resolver) -> Any:
    """Evaluate a compiled template; the result is a fresh JSON value."""
    kind = type(compiled)
    if kind is _Constant:
        value = compiled.value
        if isinstance(value, (dict, list)):
            return _deep_copy(value)
        return value
    if kind is _Lookup:
        return _lookup(compiled.path, resolve)
    if kind is _Mapping:
        return {key: evaluate(item, resolve) for key, item in compiled.items}
    if kind is _Sequence:
        return [evaluate(item, resolve) for item in compiled.items]
    pieces = []
    for part in compiled.parts:
        pieces.append(part if isinstance(part, str) else to_text(_lookup(part.path, resolve)))
    return "".join(pieces)


def _lookup(path: list[str | int], resolve: Resolver) -> Any:
    if not path:
        return None
    root = path[0]
    if not isinstance(root, str):
        return None
    value = resolve(root, path[1:])
    return _deep_copy(value) if isinstance(value, (dict, list)) else value


def walk(value: Any, path: list[str | int]) -> Any:
    """Follow `path` into a JSON value; None when any step is missing."""
    for step in path:
        if isinstance(value, dict):
            value = value.get(step if isinstance(step, str) else str(step), _MISSING)
        elif isinstance(value, list) and isinstance(step, int):
            value = value[step] if 0 <= step < len(value) else _MISSING
        else:
            return None
        if value is _MISSING:
            return None
    return value


def to_text(value: Any) -> str:
    """Render a value embedded in text the way Java's `toString` would."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={to_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_text(item) for item in value) + "]"
    return str(value)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
