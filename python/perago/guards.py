"""Workspace guardrails: declared on a `WorkspaceSpec`, checked around the task body.

A guardrail is runtime metadata only (never part of the TaskDef). Paths are
canonicalized when the helper is called, so a bad path fails at import time of the
task module with a bare `TaskDefinitionError`; count-bound problems are raised
inside Pydantic validation and surface as `ValidationError` (perago 0.6 behaviour).
The failure reasons produced by `check_guardrails` become Conductor's
`reasonForIncompletion` and are interface text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from os import PathLike, fspath
from pathlib import Path, PurePath, PureWindowsPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from perago.errors import (
    GuardrailViolation,
    PostGuardrailViolation,
    PreGuardrailViolation,
    TaskDefinitionError,
)

GuardrailKind = Literal["require_file", "require_dir", "require_glob", "forbid_glob"]

DEFAULT_REQUIRE_GLOB_MIN_COUNT = 1

_DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")
_FORBIDDEN_SEGMENTS = frozenset({"", ".", ".."})
_UNBOUNDED_KINDS = frozenset({"require_file", "require_dir"})


class WorkspaceGuardrail(BaseModel):
    """One check on the attempt workspace; build it with the helper functions.

    `path` is the canonical workspace-relative path or glob pattern. Raw dicts of
    this shape are accepted inside `WorkspaceSpec.pre`/`post` and validated the same way.
    """

    # The title keeps Pydantic's error header identical to perago 0.6
    # ("validation error for _WorkspaceGuardrail").
    model_config = ConfigDict(frozen=True, title="_WorkspaceGuardrail")

    kind: GuardrailKind
    path: str
    min_count: int | None = Field(default=None, ge=0)
    max_count: int | None = Field(default=None, ge=0)

    @field_validator("path")
    @classmethod
    def _canonical_path(cls, value: str) -> str:
        return canonical_guardrail_path(value)

    @model_validator(mode="after")
    def _check_count_bounds(self) -> WorkspaceGuardrail:
        if self.kind in _UNBOUNDED_KINDS:
            if self.min_count is not None or self.max_count is not None:
                raise TaskDefinitionError(f"{self.kind} does not accept count bounds")
            return self
        if self.kind == "require_glob" and self.min_count is None:
            # Frozen model: the default lower bound is filled in after validation.
            object.__setattr__(self, "min_count", DEFAULT_REQUIRE_GLOB_MIN_COUNT)
        if self.min_count is not None and self.max_count is not None and self.min_count > self.max_count:
            raise TaskDefinitionError("guardrail min_count must be <= max_count")
        return self

    def label(self) -> str:
        """`<kind>('<path>')`, the name failure reasons use for this guardrail."""
        return f"{self.kind}('{self.path}')"


def require_file(path: str | PathLike[str]) -> WorkspaceGuardrail:
    """Require `path` (workspace-relative) to be an existing regular file; symlinks are followed."""
    return WorkspaceGuardrail(kind="require_file", path=canonical_guardrail_path(path))


def require_dir(path: str | PathLike[str]) -> WorkspaceGuardrail:
    """Require `path` (workspace-relative) to be an existing directory."""
    return WorkspaceGuardrail(kind="require_dir", path=canonical_guardrail_path(path))


def require_glob(
    pattern: str | PathLike[str],
    *,
    min_count: int | None = DEFAULT_REQUIRE_GLOB_MIN_COUNT,
    max_count: int | None = None,
) -> WorkspaceGuardrail:
    """Require the number of pathlib glob matches (files and directories) to lie in `[min_count, max_count]`.

    `max_count=None` means unbounded; `min_count=None` means the default of 1.
    """
    return WorkspaceGuardrail(
        kind="require_glob",
        path=canonical_guardrail_path(pattern),
        min_count=min_count,
        max_count=max_count,
    )


def forbid_glob(pattern: str | PathLike[str]) -> WorkspaceGuardrail:
    """Require the pathlib glob `pattern` to match nothing in the workspace."""
    return WorkspaceGuardrail(kind="forbid_glob", path=canonical_guardrail_path(pattern))


def canonical_guardrail_path(value: str | PathLike[str]) -> str:
    """Return the `/`-joined workspace-relative form of `value`, or raise `TaskDefinitionError`.

    Paths must stay inside the workspace: no root, no drive, no empty, `.` or `..`
    segment. Strings must use `/`; pathlib objects are taken by their parts.
    """
    segments = _path_segments(value)
    if not segments:
        raise TaskDefinitionError("workspace guardrail paths must not be empty")
    if any(segment in _FORBIDDEN_SEGMENTS for segment in segments):
        raise TaskDefinitionError("workspace guardrail paths must be relative and must not contain '..'")
    return "/".join(segments)


def _path_segments(value: str | PathLike[str]) -> tuple[str, ...]:
    if isinstance(value, PureWindowsPath):
        if value.drive or value.root:
            raise TaskDefinitionError("drive-qualified or absolute guardrail paths are not allowed")
        return value.parts
    if isinstance(value, PurePath):
        if value.is_absolute():
            raise TaskDefinitionError("absolute guardrail paths are not allowed")
        return value.parts
    text = fspath(value)
    if "\\" in text:
        raise TaskDefinitionError("string guardrail paths must use '/' separators")
    if text.startswith("/"):
        raise TaskDefinitionError("guardrail paths must be relative to WorkspaceSpec(prefix=...)")
    if _DRIVE_PREFIX.match(text):
        raise TaskDefinitionError("drive-qualified guardrail paths are not allowed")
    return tuple(text.split("/"))


_PHASE_ERRORS: dict[str, type[GuardrailViolation]] = {
    "pre": PreGuardrailViolation,
    "post": PostGuardrailViolation,
}


def check_guardrails(root: Path, guardrails: Iterable[WorkspaceGuardrail], phase: str) -> None:
    """Check `guardrails` in order against the workspace at `root`; the first failure raises.

    The exception is `PreGuardrailViolation` for phase `"pre"` (terminal),
    `PostGuardrailViolation` for `"post"` (retryable), plain `GuardrailViolation`
    for any other phase label. Its text is the Conductor failure reason.
    """
    for guardrail in guardrails:
        reason = guardrail_failure(root, guardrail)
        if reason is not None:
            error = _PHASE_ERRORS.get(phase, GuardrailViolation)
            raise error(f"{phase} guardrail {guardrail.label()} {reason}")


def guardrail_failure(root: Path, guardrail: WorkspaceGuardrail) -> str | None:
    """What `guardrail` found wrong under `root` (the tail of the failure reason), or None if it holds."""
    kind = guardrail.kind
    if kind == "require_file":
        return None if (root / guardrail.path).is_file() else "did not find a file"
    if kind == "require_dir":
        return None if (root / guardrail.path).is_dir() else "did not find a directory"
    count = sum(1 for _ in root.glob(guardrail.path))
    if kind == "forbid_glob":
        return f"matched {count} files" if count else None
    if guardrail.min_count is not None and count < guardrail.min_count:
        return f"matched {count} files; min_count={guardrail.min_count}"
    if guardrail.max_count is not None and count > guardrail.max_count:
        return f"matched {count} files; max_count={guardrail.max_count}"
    return None


__all__ = [
    "DEFAULT_REQUIRE_GLOB_MIN_COUNT",
    "GuardrailKind",
    "WorkspaceGuardrail",
    "canonical_guardrail_path",
    "check_guardrails",
    "forbid_glob",
    "guardrail_failure",
    "require_dir",
    "require_file",
    "require_glob",
]
