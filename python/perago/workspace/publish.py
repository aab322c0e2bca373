"""Fenced publication of a staged commit onto the target branch, and no-op completion.

Protocol (the W-03 choice): perago never hard-resets a target branch. It only adds
commits, with the two operations lakeFS allows on protected branches: squash merge and
revert. So target branches may be protected, and no commit is ever dropped from a
branch, not even one that lands in the window between reading the head and writing
(lakeFS has no expected-head precondition).

Publishing staged commit `C` (parent `A`, the input commit) onto branch `T`:

1. Read the head `H` of `T`.
2. Walk first parents from `H` back to `A`. Every commit on the way must carry perago
   metadata naming the same logical task (an earlier attempt's publication, or perago's
   revert of one); anything else is a foreign commit and publication fails closed without
   touching `T` (W-01). A publication by another execution of this very attempt is a
   duplicate delivery and also fails closed (W-04). `A` not reached → fail closed.
3. Revert each earlier publication that is not reverted yet, newest first ("replacement").
4. Squash-merge `C` by commit id (W-07) with uniform message and provenance metadata (W-14).
5. Verify after the fact (W-02): the new commit's first parent must be the head we
   expected. If not, a foreign commit slipped in: our commit is reverted (the foreign one
   stays) and the attempt fails.
6. A merge whose answer is lost (timeout, 5xx, dropped connection) is resolved by
   re-reading `T`: a publication stamped with this execution id means it landed (W-17).

Output ref: the new head. When `H == A` that commit's single parent is `A` (0.6's
invariant). After a replacement the visible history is `A ← M1 ← revert(M1) ← M2`: the
content of `M2` is exactly `A` plus this attempt's changes, but its parent is the revert,
not `A` — 0.6 instead hard-reset `T` to the staged commit and so could silently drop a
foreign commit (W-01, W-02). No-op completion works the same way: `H == A` keeps `A`;
earlier publications of this logical task are reverted and the output ref is the revert
commit, whose content equals `A`, so the next task of the workflow can continue on `T`.

Because nothing is ever dropped from `T`, every ref perago reported to Conductor stays
reachable from the branch, so lakeFS garbage collection cannot reclaim it (W-26).

A publication is the task's output only once Conductor accepts the result naming it.
Readers must take refs from Conductor outputs, never from `T`'s head: a publication whose
attempt then runs out of retries, is terminated or skipped stays on `T` until
`perago reconcile` (`reconcile.py`, from cron or a workflow-end hook) reverts it (W-05).

Every call is bounded by an end-to-end publish deadline taken from the task's
`PublishBudget` (`lakefs_merge_timeout_seconds`, W-16); without a budget a default applies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from perago.errors import PublishFenceError
from perago.workspace.errors import (
    ForeignCommitError,
    LakeFSError,
    PublishDeadlineExceeded,
)
from perago.workspace.identity import (
    KIND,
    KIND_PUBLICATION,
    KIND_REVERT,
    REVERTS,
    PublicationIdentity,
)
from perago.workspace.lakefs_client import CommitInfo, LakeFSClient
from perago.workspace.staging import StagedWorkspace

DEFAULT_PUBLISH_DEADLINE_SECONDS = 300.0
MAX_CHAIN_LENGTH = 64
"""How many commits above the input ref publication inspects before failing closed."""


class Deadline:
    """An end-to-end time limit that hands each call the time that is left."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self._ends_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._ends_at - time.monotonic()

    def call_timeout(self, reserve: float = 0.0, cap: float | None = None) -> float:
        """Time the next call may take: what is left minus `reserve`, at most `cap`."""
        left = self.remaining() - reserve
        if left <= 0:
            raise PublishDeadlineExceeded(f"{self.what} exceeded its {self.seconds:g} s deadline")
        return left if cap is None else min(left, cap)


@dataclass
class Publisher:
    """Publishes or completes a no-op for one execution on one target branch."""

    client: LakeFSClient
    identity: PublicationIdentity
    repository: str
    branch: str
    input_ref: str
    deadline: Deadline

    # -- public ---------------------------------------------------------------------

    def publish(self, staged: StagedWorkspace) -> str:
        head = self._head()
        earlier, own = self._earlier_publications(head, "publish")
        if own is not None:
            return own
        expected = head.id
        for publication in earlier:
            expected = self._revert(publication, expected)
        reserve = min(10.0, self.deadline.seconds / 4)
        try:
            published = self.client.merge(
                self.repository,
                staged.commit,
                self.branch,
                message=self.identity.message("publish"),
                metadata=self.identity.stamp(KIND_PUBLICATION, self.input_ref),
                timeout=self.deadline.call_timeout(reserve),
            )
        except LakeFSError as error:
            if not error.outcome_unknown:
                raise
            landed = self._find_own_publication()
            if landed is None:
                raise
            published = landed
        self._verify(published, expected)
        return published

    def complete_noop(self) -> str:
        head = self._head()
        if head.id == self.input_ref:
            return self.input_ref
        earlier, own = self._earlier_publications(head, "complete no-op")
        if own is not None:
            raise PublishFenceError(
                f"{self.branch} holds publication {own} of this execution although its workspace is unchanged"
            )
        expected = head.id
        for publication in earlier:
            expected = self._revert(publication, expected)
        return expected

    # -- steps ----------------------------------------------------------------------

    def _head(self) -> CommitInfo:
        return self._commit(self.branch)

    def _commit(self, ref: str) -> CommitInfo:
        return self.client.get_commit(self.repository, ref, timeout=self._short_call())

    def _short_call(self) -> float:
        """Reads and reverts get the client's per-call limit; only the merge may use the whole budget."""
        return self.deadline.call_timeout(cap=self.client.call_timeout_seconds)

    def _earlier_publications(self, head: CommitInfo, action: str) -> tuple[list[str], str | None]:
        """Unreverted publications of this logical task above `A`, newest first; plus our own, if any.

        Raises `ForeignCommitError`/`PublishFenceError` when the branch holds anything else.
        """
        reverted: set[str] = set()
        earlier: list[str] = []
        own: str | None = None
        commit = head
        for _ in range(MAX_CHAIN_LENGTH):
            if commit.id == self.input_ref:
                return earlier, own
            metadata = commit.metadata
            kind = metadata.get(KIND)
            if not self.identity.same_logical_task(metadata) or kind not in (KIND_PUBLICATION, KIND_REVERT):
                raise ForeignCommitError(
                    f"{self.branch} cannot {action} from input ref {self.input_ref}; current head is "
                    f"{head.id} and commit {commit.id} was not written by this task"
                )
            if kind == KIND_REVERT:
                reverted.add(metadata.get(REVERTS, ""))
            elif commit.id not in reverted:
                if self.identity.same_execution(metadata):
                    own = commit.id if commit.id == head.id else own
                elif self.identity.same_attempt(metadata):
                    raise PublishFenceError(
                        f"{self.branch} already holds publication {commit.id} of attempt "
                        f"{self.identity.task_id}#{self.identity.retry_count} by another delivery"
                    )
                else:
                    earlier.append(commit.id)
            if commit.first_parent is None:
                break
            commit = self._commit(commit.first_parent)
        raise ForeignCommitError(
            f"{self.branch} cannot {action} from input ref {self.input_ref}; current head is {head.id}, "
            f"which does not descend from the input ref through this task's own commits"
        )

    def _revert(self, publication: str, expected_head: str) -> str:
        """Revert an earlier publication of this logical task; returns the verified new head.

        A lost answer is resolved like a lost merge answer: the head tells whether it landed.
        """
        lost: LakeFSError | None = None
        try:
            self.client.revert(
                self.repository,
                self.branch,
                publication,
                message=self.identity.message("revert"),
                metadata=self.identity.stamp(KIND_REVERT, self.input_ref, reverts=publication),
                timeout=self._short_call(),
            )
        except LakeFSError as error:
            if not error.outcome_unknown:
                raise
            lost = error
        head = self._head()
        if (
            head.metadata.get(KIND) == KIND_REVERT
            and head.metadata.get(REVERTS) == publication
            and self.identity.same_execution(head.metadata)
            and head.first_parent == expected_head
        ):
            return head.id
        if lost is not None:
            raise lost
        raise ForeignCommitError(
            f"{self.branch} moved while reverting earlier publication {publication}; "
            f"current head is {head.id}"
        )

    def _verify(self, published: str, expected_head: str) -> None:
        """Keep the publication only if it sits directly on the head we checked (W-02)."""
        commit = self._commit(published)
        if commit.first_parent == expected_head:
            return
        moved = (
            f"{self.branch} moved to {commit.first_parent} while publishing from input ref "
            f"{self.input_ref} (expected {expected_head})"
        )
        try:
            self.client.revert(
                self.repository,
                self.branch,
                published,
                message=self.identity.message("withdraw"),
                metadata=self.identity.stamp(KIND_REVERT, self.input_ref, reverts=published),
                timeout=max(self.deadline.remaining(), 10.0),
            )
        except LakeFSError as error:
            raise ForeignCommitError(
                f"{moved}; withdrawing publication {published} failed: {error}"
            ) from None
        raise ForeignCommitError(f"{moved}; publication {published} was reverted")

    def _find_own_publication(self) -> str | None:
        """After a lost merge answer: the publication this execution landed, if any (W-17)."""
        commit = self._head()
        for _ in range(MAX_CHAIN_LENGTH):
            if commit.id == self.input_ref:
                return None
            if commit.metadata.get(KIND) == KIND_PUBLICATION and self.identity.same_execution(
                commit.metadata
            ):
                return commit.id
            if commit.first_parent is None:
                return None
            commit = self._commit(commit.first_parent)
        return None
