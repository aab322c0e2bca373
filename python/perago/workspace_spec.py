"""`WorkspaceSpec`: which LakeFS prefix a workspace task sees, and its guardrails.

Declaring a `WorkspaceSpec` in `@task(workspace=...)` is what makes a task a
workspace task. Nothing here reaches the TaskDef; the runtime uses it to download,
check and publish the attempt workspace.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perago.errors import TaskDefinitionError
from perago.guards import WorkspaceGuardrail

REPOSITORY_ROOT_PREFIX = "/"

_FORBIDDEN_SEGMENTS = frozenset({"", ".", ".."})


class WorkspaceSpec(BaseModel):
    """The workspace of a workspace task.

    `prefix` is the LakeFS object prefix projected as the local workspace root
    (`"/"` = repository root; anything else is stored without leading slashes).
    `pre` guardrails run after download, `post` guardrails after the result is
    validated. A `read_only` workspace is never published: the output ref is the
    input ref.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str = REPOSITORY_ROOT_PREFIX
    pre: list[WorkspaceGuardrail] = Field(default_factory=list)
    post: list[WorkspaceGuardrail] = Field(default_factory=list)
    read_only: bool = False

    @field_validator("prefix")
    @classmethod
    def _normalize_prefix(cls, value: str) -> str:
        return normalize_prefix(value)


def normalize_prefix(value: str) -> str:
    """Canonical stored form of a workspace prefix, or `TaskDefinitionError`.

    Backslashes are refused before trimming; surrounding whitespace and all
    leading slashes are dropped; the rest must be non-empty `/`-separated segments
    none of which is empty, `.` or `..`.
    """
    if "\\" in value:
        raise TaskDefinitionError("WorkspaceSpec.prefix must use '/' separators")
    stripped = value.strip()
    if stripped == REPOSITORY_ROOT_PREFIX:
        return REPOSITORY_ROOT_PREFIX
    relative = stripped.lstrip("/")
    if not relative:
        raise TaskDefinitionError("WorkspaceSpec.prefix must not be empty")
    if any(segment in _FORBIDDEN_SEGMENTS for segment in relative.split("/")):
        raise TaskDefinitionError("WorkspaceSpec.prefix must stay inside the repository")
    return relative


__all__ = ["REPOSITORY_ROOT_PREFIX", "WorkspaceSpec", "normalize_prefix"]
