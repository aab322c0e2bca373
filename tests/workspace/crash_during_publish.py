"""Run one workspace attempt and SIGKILL this process at a chosen point of publication.

Used by test_crash_recovery.py as a child process: argv = repository, input ref, attempt
dir, kill point ("before_merge" | "after_merge"); the emulator's address and keys come
from the LAKECTL_* variables.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

from perago.workspace import run_workspace_attempt
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace_spec import WorkspaceSpec


def main() -> None:
    repository, input_ref, attempt_dir, kill_point = sys.argv[1:5]
    real_merge = LakeFSClient.merge

    def merge_then_die(self: LakeFSClient, *args: object, **kwargs: object) -> str:
        if kill_point == "before_merge":
            os.kill(os.getpid(), signal.SIGKILL)
        real_merge(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    LakeFSClient.merge = merge_then_die  # type: ignore[method-assign]
    client = LakeFSClient(
        os.environ["LAKECTL_SERVER_ENDPOINT_URL"],
        os.environ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        os.environ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
    )
    run_workspace_attempt(
        workspace={"repository": repository, "branch": "main", "refType": "commit", "ref": input_ref},
        spec=WorkspaceSpec(prefix="/data"),
        attempt=SimpleNamespace(
            workflow_instance_id="wf-crash", reference_task_name="render", seq=1, iteration=0,
            task_id="t-first", retry_count=0, task_def_name="render_task",
        ),
        execution_id=uuid.uuid4().hex,
        attempt_dir=Path(attempt_dir),
        runtime=LakeFSWorkspaceRuntime(client),
        fence=lambda: None,
        run_body=lambda root: (root / "edit.txt").write_bytes(b"first attempt"),
    )
    raise AssertionError("the attempt should have been killed")


if __name__ == "__main__":
    main()
