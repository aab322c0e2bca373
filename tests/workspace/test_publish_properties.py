"""Random histories of retries, crashes after merge and foreign commits on one branch.

Whatever happens, two promises hold: a commit perago did not write is never dropped or
undone, and the branch never shows more than one live publication of the logical task.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perago.workspace import run_workspace_attempt
from perago.workspace.errors import ForeignCommitError
from perago.workspace.identity import KIND, KIND_PUBLICATION, KIND_REVERT, REVERTS
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace_spec import WorkspaceSpec

from .conftest import Repo, attempt_snapshot, make_repo


class _Crash(BaseException):
    """Stands in for SIGKILL right after the merge landed (nothing below catches it)."""


step = st.one_of(
    st.tuples(st.just("attempt"), st.sampled_from([b"before", b"v1", b"v2", b"v3"])),
    st.tuples(st.just("crash_after_merge"), st.sampled_from([b"c1", b"c2"])),
    st.tuples(st.just("foreign"), st.integers(0, 3)),
)


def live_publications(repo: Repo) -> int:
    reverted: set[str] = set()
    live = 0
    commit = repo.head()
    while True:
        kind = commit.metadata.get(KIND)
        if kind == KIND_REVERT:
            reverted.add(commit.metadata[REVERTS])
        elif kind == KIND_PUBLICATION and commit.id not in reverted:
            live += 1
        if commit.first_parent is None:
            return live
        commit = repo.client.get_commit(repo.name, commit.first_parent)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=5))
def test_histories_never_lose_foreign_commits_or_publish_twice(
    lakefs: Any, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[str, Any]]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        repo = make_repo(lakefs, tmp)
        runtime = LakeFSWorkspaceRuntime(LakeFSClient(lakefs.url, lakefs.access_key_id, lakefs.secret_access_key))
        foreign: dict[str, bytes] = {}
        real_merge = LakeFSClient.merge
        for number, (kind, value) in enumerate(steps):
            if kind == "foreign":
                key = f"data/foreign-{value}.txt"
                foreign[key] = f"foreign {number}".encode()
                repo.commit_files("main", {key: foreign[key]}, message="someone else")
            else:
                crash = kind == "crash_after_merge"

                def merge_then_crash(self: LakeFSClient, *args: Any, **kwargs: Any) -> str:
                    real_merge(self, *args, **kwargs)
                    raise _Crash

                monkeypatch.setattr(LakeFSClient, "merge", merge_then_crash if crash else real_merge)
                attempt_dir = tmp / f"attempt-{number}"
                attempt_dir.mkdir()
                try:
                    output = run_workspace_attempt(
                        workspace={"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial},
                        spec=WorkspaceSpec(prefix="/data"),
                        attempt=attempt_snapshot(workflow="wf-prop", task_id=f"t-{number}", retry=number),
                        execution_id=uuid.uuid4().hex,
                        attempt_dir=attempt_dir,
                        runtime=runtime,
                        fence=lambda: None,
                        run_body=lambda root, content=value: (root / "edit.txt").write_bytes(content),
                    )
                except _Crash:
                    pass
                except ForeignCommitError:
                    assert foreign, "publication may only refuse because of a foreign commit"
                else:
                    assert not crash
                    assert repo.head().id == output["workspace"]["ref"]
                    assert repo.tree("main")["data/edit.txt"] == value
                monkeypatch.setattr(LakeFSClient, "merge", real_merge)
            tree = repo.tree("main")
            for key, content in foreign.items():
                assert tree.get(key) == content, f"foreign {key} was lost after {steps[: number + 1]}"
            assert live_publications(repo) <= 1
