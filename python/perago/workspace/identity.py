"""Who wrote a commit: the provenance perago stamps on every commit it creates.

lakeFS offers no conditional branch update, so publication recognises its own earlier
work by commit metadata (W-01, W-14): the logical task (workflow id, reference task name,
iteration) says which commits a retry may replace, the attempt (task id, retry
count) and the execution id tell a retry from a duplicate delivery of the same attempt
(W-04) and let a timed-out merge find out whether it landed (W-17).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

META_PREFIX = "perago."
KIND = "perago.kind"
LOGICAL_TASK = "perago.logical_task"
EXECUTION_ID = "perago.execution_id"
TASK_ID = "perago.task_id"
RETRY_COUNT = "perago.retry_count"
INPUT_REF = "perago.input_ref"
REVERTS = "perago.reverts"

KIND_STAGED = "staged"
KIND_PUBLICATION = "publication"
KIND_REVERT = "revert"


def _field(attempt: Any, name: str, default: Any = None) -> Any:
    if isinstance(attempt, Mapping):
        value = attempt.get(name, default)
    else:
        value = getattr(attempt, name, default)
    return default if value is None else value


@dataclass(frozen=True)
class PublicationIdentity:
    """The logical task, attempt and execution of one delivery of a workspace task."""

    workflow_instance_id: str
    reference_task_name: str
    seq: int
    iteration: int
    task_id: str
    retry_count: int
    execution_id: str
    task_def_name: str = ""

    @classmethod
    def of(cls, attempt: Any, execution_id: str) -> PublicationIdentity:
        """Read the identity from an attempt snapshot (object or mapping, snake_case names)."""
        missing = [
            name
            for name in ("workflow_instance_id", "reference_task_name", "seq", "task_id", "retry_count")
            if _field(attempt, name) is None
        ]
        if missing:
            raise ValueError(f"attempt is missing {', '.join(missing)}")
        if not execution_id:
            raise ValueError("execution id must not be empty")
        return cls(
            workflow_instance_id=str(_field(attempt, "workflow_instance_id")),
            reference_task_name=str(_field(attempt, "reference_task_name")),
            seq=int(_field(attempt, "seq")),
            iteration=int(_field(attempt, "iteration", 0)),
            task_id=str(_field(attempt, "task_id")),
            retry_count=int(_field(attempt, "retry_count")),
            execution_id=str(execution_id),
            task_def_name=str(_field(attempt, "task_def_name", "")),
        )

    @property
    def logical_key(self) -> str:
        """Stable digest of the logical task: equal across retries and redeliveries.

        Not `seq`, although W-01 lists it: Conductor gives a retry the workflow's next
        `seq` (conductor-api.md §4.7), so a key with it would make every retry see its
        own earlier publication as foreign. `seq` is stamped for humans only.
        """
        raw = json.dumps([self.workflow_instance_id, self.reference_task_name, self.iteration])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def stamp(self, kind: str, input_ref: str, **extra: str) -> dict[str, str]:
        """Commit metadata naming this execution; `extra` keys are prefixed with `perago.`."""
        metadata = {
            KIND: kind,
            LOGICAL_TASK: self.logical_key,
            "perago.workflow_instance_id": self.workflow_instance_id,
            "perago.reference_task_name": self.reference_task_name,
            "perago.seq": str(self.seq),
            "perago.iteration": str(self.iteration),
            TASK_ID: self.task_id,
            RETRY_COUNT: str(self.retry_count),
            EXECUTION_ID: self.execution_id,
            "perago.task_def_name": self.task_def_name,
            INPUT_REF: input_ref,
        }
        for name, value in extra.items():
            metadata[f"{META_PREFIX}{name}"] = value
        return metadata

    def message(self, verb: str) -> str:
        """The one commit message shape perago uses for every commit it writes."""
        return (
            f"perago {verb}: {self.task_def_name or self.reference_task_name} "
            f"(workflow {self.workflow_instance_id}, task {self.reference_task_name}, "
            f"attempt {self.task_id}#{self.retry_count})"
        )

    def same_logical_task(self, metadata: Mapping[str, str]) -> bool:
        return metadata.get(LOGICAL_TASK) == self.logical_key

    def same_attempt(self, metadata: Mapping[str, str]) -> bool:
        return metadata.get(TASK_ID) == self.task_id and metadata.get(RETRY_COUNT) == str(
            self.retry_count
        )

    def same_execution(self, metadata: Mapping[str, str]) -> bool:
        return metadata.get(EXECUTION_ID) == self.execution_id
