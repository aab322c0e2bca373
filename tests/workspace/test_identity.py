"""Provenance stamps and staging branch names."""

from __future__ import annotations

import re
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from perago.workspace.identity import KIND_PUBLICATION, PublicationIdentity
from perago.workspace.staging import staging_branch_created_at, staging_branch_name

LAKEFS_BRANCH_ID = re.compile(r"^\w[-\w]*$", re.ASCII)


def identity(**overrides: object) -> PublicationIdentity:
    fields: dict[str, object] = {
        "workflow_instance_id": "wf", "reference_task_name": "render", "seq": 1, "iteration": 0,
        "task_id": "t-1", "retry_count": 0, "task_def_name": "render_task",
    }
    fields.update(overrides)
    return PublicationIdentity.of(SimpleNamespace(**fields), "e" * 32)


@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=60))
def test_staging_branch_names_are_short_valid_and_age_readable(reference: str, workflow: str) -> None:
    name = staging_branch_name(identity(reference_task_name=reference, workflow_instance_id=workflow), now=1_700_000_000)
    assert LAKEFS_BRANCH_ID.match(name)
    assert len(name) <= 40
    assert staging_branch_created_at(name) == 1_700_000_000


def test_every_execution_gets_its_own_staging_branch() -> None:
    first = identity()
    second = PublicationIdentity.of(SimpleNamespace(**first.__dict__), "f" * 32)
    assert staging_branch_name(first, now=1) != staging_branch_name(second, now=1)


def test_logical_task_survives_retries_and_redeliveries_but_not_other_tasks() -> None:
    retry = identity(task_id="t-2", retry_count=1, seq=2)  # Conductor numbers a retry with the next seq
    assert identity().logical_key == retry.logical_key
    assert identity().logical_key != identity(iteration=1).logical_key
    assert identity().logical_key != identity(workflow_instance_id="wf-2").logical_key
    stamp = retry.stamp(KIND_PUBLICATION, "a" * 64)
    assert identity().same_logical_task(stamp)
    assert not identity().same_attempt(stamp)
    assert retry.same_attempt(stamp) and retry.same_execution(stamp)
    assert all(isinstance(value, str) for value in stamp.values())
