"""The workspace reference exchanged with Conductor: `workspace` in a task's input
and output.

Only immutable commit refs are accepted (`refType` must be `"commit"`, spelled in
camelCase), so an attempt always downloads exactly what the workflow pointed at.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perago.errors import TaskDefinitionError


class WorkspaceRef(BaseModel):
    """Repository, target branch and commit; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(min_length=1)
    branch: str = Field(min_length=1)
    refType: Literal["commit"]  # noqa: N815 - the Conductor payload key
    ref: str = Field(min_length=1)

    @field_validator("repository", "branch", "ref")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise TaskDefinitionError("workspace repository, branch, and ref must not be blank")
        return value


class WorkspaceInput(WorkspaceRef):
    """`inputData.workspace`: download `ref` of `repository`; a writable task advances `branch`."""

    def published_output(self, ref: str) -> WorkspaceOutput:
        """The output reference after publishing (or keeping) commit `ref` on the same branch."""
        return WorkspaceOutput.__pydantic_validator__.validate_python(
            {"repository": self.repository, "branch": self.branch, "refType": "commit", "ref": ref}
        )


class WorkspaceOutput(WorkspaceRef):
    """`output.workspace`: the commit the task's workspace ended at."""


__all__ = ["WorkspaceInput", "WorkspaceOutput", "WorkspaceRef"]
