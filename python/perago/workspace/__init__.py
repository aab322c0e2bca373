"""The lakeFS workspace runtime: download, change detection, staging and fenced publication.

The attempt runner calls `run_workspace_attempt` with one shared `LakeFSWorkspaceRuntime`;
`publish` documents the publication protocol, `reconcile` the rollback of publications
Conductor never recorded (`perago reconcile`): readers take refs from Conductor outputs,
never from a branch head.
"""

from perago.workspace.attempt import (
    LakeFSWorkspaceAttempts,
    WorkspaceIoMetrics,
    core_attempt_directory,
    run_workspace_attempt,
    workspace_attempts_from_config,
)
from perago.workspace.errors import (
    ForeignCommitError,
    LakeFSError,
    PublishDeadlineExceeded,
    WorkspaceContractError,
)
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace.staging import StagedWorkspace, sweep_stale_staging_branches

__all__ = [
    "ForeignCommitError",
    "LakeFSClient",
    "LakeFSError",
    "LakeFSWorkspaceAttempts",
    "LakeFSWorkspaceRuntime",
    "PublishDeadlineExceeded",
    "StagedWorkspace",
    "WorkspaceContractError",
    "WorkspaceIoMetrics",
    "core_attempt_directory",
    "run_workspace_attempt",
    "sweep_stale_staging_branches",
    "workspace_attempts_from_config",
]
