"""Name rules and ref-expression parsing (spec §6.1, §6.2).

A ref expression is a base (commit ID, branch, tag or unique commit-ID prefix) followed by
modifiers: `@` (committed head only), `$` (the branch's staging area), `~N` (N-th first-parent
ancestor) and `^N` (N-th parent). Resolution against the graph lives in `graph.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import bad_request

REPOSITORY_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
BRANCH_ID = re.compile(r"[A-Za-z0-9_][-A-Za-z0-9_]*")
TAG_ID = re.compile(r"[^\s~^:?*\[\\]+")
COMMIT_ID = re.compile(r"[0-9a-f]{64}")
HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")
_REF = re.compile(r"\S+")
_MODIFIER = re.compile(r"([~^])(\d*)")


def check_repository_id(name: object) -> str:
    if not isinstance(name, str) or not REPOSITORY_ID.fullmatch(name):
        raise bad_request(f"repository id: invalid value: {name!r} must match ^[a-z0-9][a-z0-9-]{{2,62}}$")
    return name


def check_branch_id(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not BRANCH_ID.fullmatch(name):
        raise bad_request(f"{field}: invalid branch id {name!r}: must match ^\\w[-\\w]*$")
    return name


def check_tag_id(name: object) -> str:
    if not isinstance(name, str) or not TAG_ID.fullmatch(name) or name.startswith("-"):
        raise bad_request(f"id: invalid tag id {name!r}")
    return name


@dataclass(frozen=True)
class RefExpr:
    base: str
    committed_only: bool  # `@`
    staging: bool  # `$`
    steps: tuple[tuple[str, int], ...]  # ("~", n) / ("^", n)


def parse_ref(text: object, field: str = "ref") -> RefExpr:
    if not isinstance(text, str) or not _REF.fullmatch(text):
        raise bad_request(f"{field}: invalid ref {text!r}")
    cut = len(text)
    for mark in "@$~^":
        position = text.find(mark)
        if position != -1:
            cut = min(cut, position)
    base, rest = text[:cut], text[cut:]
    if not base:
        raise bad_request(f"{field}: invalid ref {text!r}")
    committed_only = staging = False
    if rest.startswith("@"):
        committed_only, rest = True, rest[1:]
    elif rest.startswith("$"):
        staging, rest = True, rest[1:]
    steps: list[tuple[str, int]] = []
    while rest:
        match = _MODIFIER.match(rest)
        if not match:
            raise bad_request(f"{field}: invalid ref {text!r}")
        steps.append((match.group(1), int(match.group(2)) if match.group(2) else 1))
        rest = rest[match.end():]
    if staging and steps:
        raise bad_request(f"{field}: invalid ref {text!r}")
    return RefExpr(base, committed_only, staging, tuple(steps))
