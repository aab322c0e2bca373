"""Staging branches: where an attempt's changes become one commit before publication.

A staging branch is short and hidden (W-24): `perago-stg-<unix seconds>-<16 hex>`, the hex
being a digest of the execution's full identity, which itself lives in the staged
commit's metadata. The creation time in the name is what the sweeper ages by, because
lakeFS keeps no creation date for branches. The branch is deleted on every path out of
staging (a failure inside staging included, W-06); what a killed executor leaves behind is
removed by `sweep_stale_staging_branches` once it is older than any attempt can run
(runtime W-28).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass

from loguru import logger

from perago.workspace.errors import LakeFSError
from perago.workspace.identity import KIND_STAGED, PublicationIdentity
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.manifest import ChangeSet, ChangeSurvey
from perago.workspace.transfer import DEFAULT_CONCURRENCY, upload_changed

STAGING_PREFIX = "perago-stg-"
_STAGING_NAME = re.compile(r"^perago-stg-(\d+)-[0-9a-f]{16}$")
DEFAULT_STAGING_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StagedWorkspace:
    """Immutable record of a staged commit; cleanup needs nothing else (thread-mode safe)."""

    repository: str
    branch: str
    commit: str


def staging_branch_name(identity: PublicationIdentity, now: float | None = None) -> str:
    created = int(time.time() if now is None else now)
    digest = hashlib.sha256(
        "\x00".join(
            [
                identity.workflow_instance_id,
                identity.reference_task_name,
                str(identity.seq),
                str(identity.iteration),
                identity.task_id,
                str(identity.retry_count),
                identity.execution_id,
            ]
        ).encode()
    ).hexdigest()[:16]
    return f"{STAGING_PREFIX}{created}-{digest}"


def staging_branch_created_at(name: str) -> int | None:
    """Creation time encoded in a staging branch name; None for other branch names."""
    match = _STAGING_NAME.match(name)
    return int(match.group(1)) if match else None


def stage_changes(
    client: LakeFSClient,
    identity: PublicationIdentity,
    repository: str,
    input_ref: str,
    survey: ChangeSurvey,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
) -> tuple[StagedWorkspace | None, ChangeSet]:
    """Write what changed to a hidden branch forked from `input_ref` and commit it with provenance.

    The branch is created when the first changed file is about to be uploaded (or for the
    deletes), so an attempt whose rewritten files all hold their old content writes nothing
    and gets None. Any failure deletes the branch if its creation was tried, before the error
    propagates, so a failed staging leaves nothing behind (or, if lakeFS cannot even answer
    the delete, a branch the sweeper ages out). Returns the staged commit and the plan applied.
    """
    branch = _StagingBranch(client, repository, staging_branch_name(identity), input_ref, timeout)
    try:
        uploads = upload_changed(
            client, repository, branch.ensure, survey.candidates, concurrency=concurrency, timeout=timeout
        )
        changes = ChangeSet(uploads=tuple(uploads), deletes=survey.deletes)
        if not changes.changed:
            return None, changes
        if changes.deletes:
            client.delete_objects(repository, branch.ensure(), list(changes.deletes), timeout=timeout)
        commit = client.commit(
            repository,
            branch.ensure(),
            identity.message("staged"),
            identity.stamp(KIND_STAGED, input_ref),
            timeout=timeout,
        )
    except BaseException:
        if branch.requested:
            discard_staging_branch(client, repository, branch.name)
        raise
    if commit.first_parent != input_ref:
        discard_staging_branch(client, repository, branch.name)
        raise LakeFSError(
            f"commit staging branch {branch.name!r}",
            None,
            f"staged commit {commit.id} has parent {commit.first_parent}, expected {input_ref}",
        )
    return StagedWorkspace(repository=repository, branch=branch.name, commit=commit.id), changes


class _StagingBranch:
    """A staging branch created on first use (the first upload, the deletes or the commit);
    concurrent users wait for that one creation."""

    def __init__(
        self, client: LakeFSClient, repository: str, name: str, input_ref: str, timeout: float | None
    ) -> None:
        self.name = name
        self.requested = False
        """Creation was sent: lakeFS may hold the branch even if the answer never came."""
        self._client = client
        self._repository = repository
        self._input_ref = input_ref
        self._timeout = timeout
        self._failure: BaseException | None = None
        self._lock = threading.Lock()

    def ensure(self) -> str:
        """The branch name, once the branch exists; a failed creation is raised to every caller."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if not self.requested:  # requested and not failed: created
                self.requested = True
                try:
                    self._client.create_branch(
                        self._repository, self.name, self._input_ref, hidden=True, timeout=self._timeout
                    )
                except BaseException as error:
                    self._failure = error
                    raise
        return self.name


def discard_staging_branch(
    client: LakeFSClient, repository: str, branch: str, *, timeout: float | None = 10.0
) -> None:
    """Delete a staging branch; failures are logged, never raised (the sweeper is the backstop)."""
    try:
        client.delete_branch(repository, branch, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - cleanup must not change the attempt's result
        logger.error(
            "failed to clean staging workspace",
            repository=repository,
            staging_branch=branch,
            error=str(error),
        )


def sweep_stale_staging_branches(
    client: LakeFSClient,
    repository: str,
    *,
    max_age_seconds: float = DEFAULT_STAGING_TTL_SECONDS,
    now: float | None = None,
) -> list[str]:
    """Delete perago staging branches of `repository` older than `max_age_seconds`; returns their names."""
    current = time.time() if now is None else now
    removed: list[str] = []
    for branch, _head in list(client.list_branches(repository, STAGING_PREFIX)):
        created = staging_branch_created_at(branch)
        if created is None or current - created < max_age_seconds:
            continue
        if client.delete_branch(repository, branch):
            removed.append(branch)
    if removed:
        logger.info("removed stale staging branches", repository=repository, branches=removed)
    return removed
