"""Find abandoned publications on target branches and roll them back (spec W-05).

A publication (commit metadata `perago.kind = publication`, see `identity.py`) becomes a
task's output only when Conductor accepts the COMPLETED result naming it. When that never
happens — retries exhausted after the merge landed, the workflow terminated or the task
skipped mid-publish, a later attempt or a duplicate delivery recorded instead — the commit
stays on the branch and nobody owns it. Readers must take refs from Conductor outputs, never
from a branch head; a `Reconciler` run then withdraws what Conductor will never record.

It walks the recent first-parent history of each branch (bounded by a time window and a
commit count), and for every publication not reverted yet asks Conductor about the attempt
its metadata names. Any doubt keeps the commit:

| Conductor says | Verdict |
| --- | --- |
| task or workflow unreadable (unreachable, 5xx, auth: the run fails; unknown id: it does not) | undecided, kept |
| the task's workspace input names another repository or branch (this one inherited the commit) | kept |
| the commit is in the output or input of any task of the workflow, or the workflow's | kept |
| a later unreverted publication on the branch names the commit as its input ref | kept (until that one is reverted) |
| the attempt is SCHEDULED or IN_PROGRESS | kept |
| the workflow is COMPLETED, FAILED, TIMED_OUT or TERMINATED | orphan |
| the attempt ended in a status Conductor never retries (COMPLETED elsewhere, COMPLETED_WITH_ERRORS, FAILED_WITH_TERMINAL_ERROR, CANCELED, SKIPPED) | orphan |
| the attempt FAILED or TIMED_OUT and its last retry has ended too | orphan |
| the attempt FAILED or TIMED_OUT and a retry may still run (it replaces the commit itself) | kept |

An orphan is rolled back the way `publish.py` replaces one: with a lakeFS revert, never a
reset, so protected branches work and commits that landed on top stay. The revert is
stamped with the orphan's own identity plus `perago.reverts`, so a later publication of the
same logical task treats it like its own replacement, and the next run sees the orphan as
done (idempotent). Right before each revert the branch is re-read; afterwards the revert
must sit on the head that was checked, or only on commits unrelated to the orphan's task —
if the task's retry published meanwhile, the revert is withdrawn and reported as failed.
A revert that conflicts with later commits is refused by lakeFS and reported as failed; one
that finds nothing to undo (someone reverted by hand) is reported as already reverted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from loguru import logger

from perago.conductor.errors import ConductorError, ConductorHttpStatusError
from perago.workspace.errors import LakeFSError
from perago.workspace.identity import (
    EXECUTION_ID,
    INPUT_REF,
    KIND,
    KIND_PUBLICATION,
    KIND_REVERT,
    REVERTS,
    PublicationIdentity,
)
from perago.workspace.lakefs_client import CommitInfo, LakeFSClient
from perago.workspace.staging import STAGING_PREFIX

DEFAULT_WINDOW_SECONDS = 7 * 24 * 3600.0
DEFAULT_MAX_COMMITS = 1000
VERIFY_DEPTH = 64
"""How far below the head a revert is looked for after the call, and how deep a moved head is inspected."""
REASON_METADATA_LIMIT = 500

TERMINAL_WORKFLOW = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})
RUNNING_TASK = frozenset({"SCHEDULED", "IN_PROGRESS"})
NEVER_RETRIED_TASK = frozenset(
    {"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED_WITH_TERMINAL_ERROR", "CANCELED", "SKIPPED"}
)
TASK_STATUSES = RUNNING_TASK | NEVER_RETRIED_TASK | {"FAILED", "TIMED_OUT"}
WORKFLOW_STATUSES = TERMINAL_WORKFLOW | {"RUNNING", "PAUSED"}

Action = Literal["kept", "undecided", "reverted", "would revert", "already reverted", "failed"]


class ConductorReader(Protocol):
    """The two reads the reconciler needs; `perago.conductor.ConductorClient` provides them."""

    def get_task(self, task_id: str) -> dict[str, Any]: ...

    def get_workflow(self, workflow_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Decision:
    """What became of one publication; `failed` counts against the run's exit status."""

    repository: str
    branch: str
    publication: str
    action: Action
    reason: str
    revert: str | None = None
    failed: bool = False

    def line(self) -> str:
        """One operator-facing line, as `perago reconcile` prints it."""
        target = f"{self.repository}/{self.branch} {self.publication}"
        revert = f" by {self.revert}" if self.revert else ""
        return f"{self.action}: {target}{revert}: {self.reason}"


@dataclass(frozen=True)
class _Publication:
    commit: CommitInfo
    identity: PublicationIdentity
    used_as_input_by: str | None


@dataclass
class Verdict:
    """Conductor's view of one publication: orphan (revert it), kept, or undecided (kept too)."""

    orphan: bool
    reason: str
    undecided: bool = False
    unanswered: bool = False
    """Conductor failed to answer (not merely "unknown id"): the run must not report success."""


@dataclass
class ConductorView:
    """Answers for one run: workflows cached, and no further calls once Conductor is down."""

    conductor: ConductorReader
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: str | None = None

    def verdict(self, publication: str, identity: PublicationIdentity, repository: str, branch: str) -> Verdict:
        """Apply the module's decision table to the attempt `identity` names, found on `branch`."""
        if self.down is not None:
            return Verdict(False, f"not asked: {self.down}", undecided=True, unanswered=True)
        try:
            return self._verdict(publication, identity, repository, branch)
        except ConductorError as error:
            if isinstance(error, ConductorHttpStatusError) and error.status == 404:
                return Verdict(False, f"Conductor does not know it ({error})", undecided=True)
            self.down = f"Conductor could not answer ({error})"
            return Verdict(False, self.down, undecided=True, unanswered=True)
        except (ValueError, KeyError, TypeError) as error:
            reason = f"Conductor's answer is unreadable ({type(error).__name__}: {error})"
            return Verdict(False, reason, undecided=True, unanswered=True)

    def _verdict(self, publication: str, identity: PublicationIdentity, repository: str, branch: str) -> Verdict:
        attempt = f"attempt {identity.task_id}#{identity.retry_count} of {identity.reference_task_name}"
        task = self.conductor.get_task(identity.task_id)
        workflow_id = task.get("workflowInstanceId")
        if workflow_id != identity.workflow_instance_id:
            return Verdict(
                False,
                f"Conductor's task {identity.task_id} belongs to workflow {workflow_id}, "
                f"not {identity.workflow_instance_id}",
                undecided=True,
            )
        workspace = (task.get("inputData") or {}).get("workspace")
        if not isinstance(workspace, Mapping):
            return Verdict(False, f"Conductor's task {identity.task_id} has no workspace input", undecided=True)
        target = (workspace.get("repository"), workspace.get("branch"))
        if target != (repository, branch):
            return Verdict(False, f"published to {target[0]}/{target[1]}; this branch only inherited it")
        status = _status(task, TASK_STATUSES, f"task {identity.task_id}")
        if _mentions(task.get("outputData"), publication):
            return Verdict(False, f"Conductor recorded it as the output of {attempt} ({status})")
        if status in RUNNING_TASK:
            return Verdict(False, f"{attempt} is still {status}")
        workflow = self._workflow(identity.workflow_instance_id)
        tasks = [t for t in workflow.get("tasks") or [] if isinstance(t, Mapping)]
        for other in tasks:
            if _mentions(other.get("outputData"), publication) or _mentions(other.get("inputData"), publication):
                return Verdict(
                    False, f"task {other.get('referenceTaskName')} ({other.get('taskId')}) of the workflow refers to it"
                )
        if _mentions(workflow.get("output"), publication) or _mentions(workflow.get("input"), publication):
            return Verdict(False, f"workflow {identity.workflow_instance_id} refers to it")
        workflow_status = _status(workflow, WORKFLOW_STATUSES, f"workflow {identity.workflow_instance_id}")
        ended = f"{attempt} ended {status}"
        if workflow_status in TERMINAL_WORKFLOW:
            return Verdict(True, f"{ended} and workflow {identity.workflow_instance_id} is {workflow_status}")
        if status in NEVER_RETRIED_TASK:
            return Verdict(True, f"{ended}, which Conductor never retries; workflow is {workflow_status}")
        latest = _last_retry(tasks, identity.task_id)
        if latest is None:
            return Verdict(False, f"{ended} and Conductor may still retry it (workflow {workflow_status})")
        latest_status = _status(latest, TASK_STATUSES, f"task {latest.get('taskId')}")
        if latest_status in RUNNING_TASK:
            return Verdict(False, f"{ended}; its retry {latest.get('taskId')} is {latest_status} and replaces it")
        return Verdict(True, f"{ended} and its last retry {latest.get('taskId')} ended {latest_status}")

    def _workflow(self, workflow_id: str) -> dict[str, Any]:
        cached = self.workflows.get(workflow_id)
        if cached is None:
            cached = self.workflows[workflow_id] = self.conductor.get_workflow(workflow_id)
        return cached


def _status(record: Mapping[str, Any], known: frozenset[str], what: str) -> str:
    """The record's status; anything Conductor does not define is an unreadable answer, never a verdict."""
    status = record.get("status")
    if status not in known:
        raise ValueError(f"{what} has status {status!r}")
    return str(status)


def _last_retry(tasks: list[Mapping[str, Any]], task_id: str) -> Mapping[str, Any] | None:
    """The newest attempt in the `retriedTaskId` chain that starts at `task_id`; None without retries."""
    retry_of = {str(t.get("retriedTaskId")): t for t in tasks if t.get("retriedTaskId")}
    latest: Mapping[str, Any] | None = None
    current = task_id
    for _ in range(len(tasks)):
        following = retry_of.get(current)
        if following is None:
            break
        latest, current = following, str(following.get("taskId"))
    return latest


def _mentions(value: Any, commit_id: str, depth: int = 0) -> bool:
    """True when `commit_id` appears as a string anywhere in a Conductor payload."""
    if isinstance(value, str):
        return value == commit_id
    if depth > 32:
        return False
    if isinstance(value, Mapping):
        return any(_mentions(item, commit_id, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, commit_id, depth + 1) for item in value)
    return False


def identity_from_metadata(metadata: Mapping[str, str], execution_id: str | None = None) -> PublicationIdentity | None:
    """The identity a perago commit was stamped with; None when its metadata is incomplete."""
    try:
        return PublicationIdentity(
            workflow_instance_id=metadata["perago.workflow_instance_id"],
            reference_task_name=metadata["perago.reference_task_name"],
            seq=int(metadata["perago.seq"]),
            iteration=int(metadata["perago.iteration"]),
            task_id=metadata["perago.task_id"],
            retry_count=int(metadata["perago.retry_count"]),
            execution_id=execution_id or metadata[EXECUTION_ID],
            task_def_name=metadata.get("perago.task_def_name", ""),
        )
    except (KeyError, ValueError):
        return None


class Reconciler:
    """One reconciliation run over one repository; `run_id` names its reverts.

    `workflow_id` limits the run to that workflow's publications (a workflow-end hook).
    """

    def __init__(
        self,
        client: LakeFSClient,
        conductor: ConductorReader,
        repository: str,
        *,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_commits: int = DEFAULT_MAX_COMMITS,
        dry_run: bool = False,
        workflow_id: str | None = None,
        now: float | None = None,
    ) -> None:
        if max_commits < 1:
            raise ValueError("max_commits must be at least 1")
        self.client = client
        self.repository = repository
        self.max_commits = max_commits
        self.dry_run = dry_run
        self.workflow_id = workflow_id
        self.since = (time.time() if now is None else now) - window_seconds
        self.run_id = f"reconcile-{uuid.uuid4().hex}"
        self._conductor = ConductorView(conductor)

    @property
    def conductor_down(self) -> str | None:
        """Why Conductor stopped being asked during this run, if it did."""
        return self._conductor.down

    def branches(self) -> list[str]:
        """Every branch of the repository except perago's own staging branches."""
        return sorted(
            name for name, _ in self.client.list_branches(self.repository, "") if not name.startswith(STAGING_PREFIX)
        )

    def reconcile(self, branches: Iterable[str] | None = None) -> list[Decision]:
        """Decide every unreverted publication on `branches` (default: all), newest first, and act."""
        decisions: list[Decision] = []
        for branch in self.branches() if branches is None else branches:
            decisions.extend(self.reconcile_branch(branch))
        return decisions

    def reconcile_branch(self, branch: str) -> list[Decision]:
        """Decide and act on one branch; raises `LakeFSError` when its history cannot be read."""
        decisions = []
        for publication in self._live_publications(self._history(branch)):
            if self.workflow_id is not None and publication.identity.workflow_instance_id != self.workflow_id:
                continue
            decision = self._decide(branch, publication)
            _log(decision)
            decisions.append(decision)
        return decisions

    # -- reading the branch ---------------------------------------------------------------

    def _history(self, branch: str) -> Iterator[CommitInfo]:
        """First-parent history from the head, stopping at the window or the commit bound."""
        for count, commit in enumerate(self.client.log(self.repository, branch)):
            if count >= self.max_commits or 0 < commit.creation_date < self.since:
                return
            yield commit

    def _live_publications(self, history: Iterable[CommitInfo], stop_at: str | None = None) -> list[_Publication]:
        """Publications not reverted (a withdrawn revert does not count), newest first."""
        reverted: set[str] = set()
        used_as_input: dict[str, str] = {}
        live: list[_Publication] = []
        for commit in history:
            if commit.id in reverted:
                continue
            kind = commit.metadata.get(KIND)
            if kind == KIND_REVERT:
                reverted.add(commit.metadata.get(REVERTS, ""))
            elif kind == KIND_PUBLICATION:
                identity = identity_from_metadata(commit.metadata)
                if identity is None:
                    logger.warning(
                        "perago publication with incomplete metadata left alone",
                        repository=self.repository,
                        commit=commit.id,
                    )
                else:
                    live.append(_Publication(commit, identity, used_as_input.get(commit.id)))
                    used_as_input.setdefault(commit.metadata.get(INPUT_REF, ""), commit.id)
            if commit.id == stop_at:
                break
        return live

    # -- deciding and acting --------------------------------------------------------------

    def _decide(self, branch: str, publication: _Publication) -> Decision:
        commit_id = publication.commit.id
        if publication.used_as_input_by is not None:
            return self._decision(branch, commit_id, "kept", f"publication {publication.used_as_input_by} builds on it")
        verdict = self._conductor.verdict(commit_id, publication.identity, self.repository, branch)
        if verdict.undecided:
            reason = f"{verdict.reason}; left in place"
            return self._decision(branch, commit_id, "undecided", reason, failed=verdict.unanswered)
        if not verdict.orphan:
            return self._decision(branch, commit_id, "kept", verdict.reason)
        if self.dry_run:
            return self._decision(branch, commit_id, "would revert", verdict.reason)
        return self._revert(branch, publication, verdict.reason)

    def _decision(self, branch: str, publication: str, action: Action, reason: str, **more: Any) -> Decision:
        return Decision(self.repository, branch, publication, action, reason, **more)

    def _failed(self, branch: str, publication: str, reason: str, **more: Any) -> Decision:
        return Decision(self.repository, branch, publication, "failed", reason, failed=True, **more)

    def _revert(self, branch: str, publication: _Publication, reason: str) -> Decision:
        orphan = publication.commit.id
        try:
            head, still_live = self._recheck(branch, orphan)
        except LakeFSError as error:
            return self._failed(branch, orphan, f"{reason}; re-reading the branch failed: {error}")
        if still_live is None:
            moved = f"{reason}; but the branch no longer holds it, left alone"
            return self._decision(branch, orphan, "undecided", moved, failed=True)
        if not still_live:
            return self._decision(branch, orphan, "already reverted", "reverted while this run was deciding")
        identity = identity_from_metadata(publication.commit.metadata, execution_id=self.run_id)
        assert identity is not None  # checked when the publication was listed
        stamp = identity.stamp(
            KIND_REVERT,
            publication.commit.metadata.get(INPUT_REF, ""),
            reverts=orphan,
            reconciled="orphaned publication",
            reason=reason[:REASON_METADATA_LIMIT],
        )
        lost: LakeFSError | None = None
        message = identity.message("reconcile revert")
        try:
            self.client.revert(self.repository, branch, orphan, message=message, metadata=stamp)
        except LakeFSError as error:
            if error.status == 400 and "no changes" in error.detail.lower():
                undone = f"{reason}; its changes are already undone on the branch (a revert without perago metadata?)"
                return self._decision(branch, orphan, "already reverted", undone)
            if not error.outcome_unknown:
                return self._failed(branch, orphan, f"{reason}; revert refused: {error}")
            lost = error
        try:
            return self._verify(branch, publication, head, reason, lost)
        except LakeFSError as error:
            return self._failed(branch, orphan, f"{reason}; checking the revert failed: {error}")

    def _recheck(self, branch: str, orphan: str) -> tuple[str, bool | None]:
        """The head now, and whether `orphan` is still unreverted on it (None: not found)."""
        history = list(self._history(branch))
        if not history or orphan not in {commit.id for commit in history}:
            return (history[0].id if history else ""), None
        live = self._live_publications(history, stop_at=orphan)
        return history[0].id, any(p.commit.id == orphan for p in live)

    def _verify(
        self, branch: str, publication: _Publication, expected_head: str, reason: str, lost: LakeFSError | None
    ) -> Decision:
        """Find our revert; withdraw it if the orphan's own task wrote to the branch meanwhile."""
        orphan = publication.commit.id
        ours = self._find_revert(branch, orphan)
        if ours is None:
            detail = f"revert outcome unknown and not on the branch: {lost}" if lost else "revert not found on the branch"
            return self._failed(branch, orphan, f"{reason}; {detail}")
        if ours.first_parent == expected_head:
            return self._decision(branch, orphan, "reverted", reason, revert=ours.id)
        between = self._between(ours.first_parent, expected_head)
        meanwhile = [c for c in between if _same_task(c.metadata, publication.identity)]
        if not meanwhile:
            return self._decision(branch, orphan, "reverted", reason, revert=ours.id)
        withdrawn = "was withdrawn" if self._withdraw(branch, ours, publication.identity) else "could NOT be withdrawn"
        raced = f"{reason}; but its task wrote {meanwhile[0].id} to the branch meanwhile, so revert {ours.id} {withdrawn}"
        return self._failed(branch, orphan, raced, revert=ours.id)

    def _find_revert(self, branch: str, orphan: str) -> CommitInfo | None:
        for depth, commit in enumerate(self.client.log(self.repository, branch)):
            if depth >= VERIFY_DEPTH:
                return None
            if commit.metadata.get(EXECUTION_ID) == self.run_id and commit.metadata.get(REVERTS) == orphan:
                return commit
        return None

    def _between(self, top: str | None, bottom: str) -> list[CommitInfo]:
        """Commits from `top` down to (not including) `bottom` on the first-parent chain."""
        found: list[CommitInfo] = []
        if top is None:
            return found
        for commit in self.client.log(self.repository, top):
            if commit.id == bottom or len(found) >= VERIFY_DEPTH:
                break
            found.append(commit)
        return found

    def _withdraw(self, branch: str, revert: CommitInfo, identity: PublicationIdentity) -> bool:
        try:
            self.client.revert(
                self.repository,
                branch,
                revert.id,
                message=identity.message("reconcile withdraw"),
                metadata=identity.stamp(KIND_REVERT, revert.metadata.get(INPUT_REF, ""), reverts=revert.id),
            )
        except LakeFSError as error:
            logger.error(
                "withdrawing a reconcile revert failed",
                repository=self.repository,
                branch=branch,
                revert=revert.id,
                error=str(error),
            )
            return False
        return True


def _same_task(metadata: Mapping[str, str], identity: PublicationIdentity) -> bool:
    """A perago commit of the same workflow step (any attempt): its retry published meanwhile."""
    return (
        metadata.get(KIND) in (KIND_PUBLICATION, KIND_REVERT)
        and metadata.get("perago.workflow_instance_id") == identity.workflow_instance_id
        and metadata.get("perago.reference_task_name") == identity.reference_task_name
        and metadata.get("perago.iteration") == str(identity.iteration)
    )


def _log(decision: Decision) -> None:
    level = "WARNING" if decision.failed or decision.action == "reverted" else "INFO"
    logger.log(
        level,
        "reconcile: {} publication {} on {}/{}: {}",
        decision.action,
        decision.publication,
        decision.repository,
        decision.branch,
        decision.reason,
        revert=decision.revert,
    )

