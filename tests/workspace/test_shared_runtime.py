"""Thread mode: one runtime object serves concurrent attempts of many workflows."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from perago.workspace import run_workspace_attempt
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace_spec import WorkspaceSpec

from .conftest import Repo, attempt_snapshot
from .test_attempt_emulator import staging_branches


def test_many_workflows_on_their_own_branches_each_publish_exactly_their_change(
    repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    workflows = [f"wf-{n}" for n in range(8)]
    for workflow in workflows:
        repo.create_branch(f"branch-{workflow}", repo.initial)

    def attempt(workflow: str) -> str:
        attempt_dir = tmp_path / workflow
        attempt_dir.mkdir()

        def body(root: Path) -> None:
            (root / "edit.txt").write_bytes(workflow.encode())
            (root / f"{workflow}.out").write_bytes(b"result")

        output = run_workspace_attempt(
            workspace={"repository": repo.name, "branch": f"branch-{workflow}", "refType": "commit", "ref": repo.initial},
            spec=WorkspaceSpec(prefix="/data"),
            attempt=attempt_snapshot(workflow=workflow),
            execution_id=uuid.uuid4().hex,
            attempt_dir=attempt_dir,
            runtime=runtime,
            fence=lambda: None,
            run_body=body,
        )
        return output["workspace"]["ref"]

    with ThreadPoolExecutor(max_workers=len(workflows)) as pool:
        refs = dict(zip(workflows, pool.map(attempt, workflows)))

    initial_tree = repo.tree(repo.initial)
    for workflow, ref in refs.items():
        head = repo.head(f"branch-{workflow}")
        assert head.id == ref and head.parents == (repo.initial,)
        expected = {**initial_tree, "data/edit.txt": workflow.encode(), f"data/{workflow}.out": b"result"}
        assert repo.tree(ref) == expected
    assert repo.head("main").id == repo.initial
    assert staging_branches(repo) == []
