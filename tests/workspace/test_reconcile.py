"""`perago reconcile` on both emulators: abandoned publications are reverted, everything else stays.

Each test runs a real workspace attempt (`run_workspace_attempt`, the runtime's publish
path) for a task polled from the Conductor emulator, then drives Conductor through its
HTTP API into the state under test (task failed for good, workflow terminated, still
running, completed), and reconciles over real HTTP.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest
from typer.testing import CliRunner

from perago.attempt import AttemptSnapshot
from perago.cli import app
from perago.conductor import ConductorClient
from perago.conductor.errors import ConductorClientError, ConductorTransportError
from perago.testing.conductor import ConductorEmulator
from perago.workspace import run_workspace_attempt
from perago.testing.lakefs.faults import FaultRule
from perago.workspace.identity import EXECUTION_ID, KIND, KIND_PUBLICATION, KIND_REVERT, REVERTS, PublicationIdentity
from perago.workspace.reconcile import ConductorView, Decision, Reconciler
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace_spec import WorkspaceSpec
from runtime.conductor_admin import ConductorAdmin

from .conftest import Repo

_names = itertools.count(1)
TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def conductor() -> Iterator[ConductorEmulator]:
    with ConductorEmulator() as emulator:
        yield emulator


@pytest.fixture()
def admin(conductor: ConductorEmulator) -> ConductorAdmin:
    return ConductorAdmin(conductor.url)


@pytest.fixture()
def conductor_client(conductor: ConductorEmulator) -> Iterator[ConductorClient]:
    client = ConductorClient(conductor.url, worker_id="reconcile-test")
    yield client
    client.close()


class Flow:
    """One single-task workflow whose task has been polled and has published through perago."""

    def __init__(
        self, admin: ConductorAdmin, client: ConductorClient, repo: Repo, ref: str | None = None, **taskdef: Any
    ) -> None:
        self.admin, self.client, self.repo = admin, client, repo
        self.task_name = f"reconcile.render{next(_names)}"
        flow_name = admin.setup_single_task_workflow(self.task_name, **taskdef)
        workspace = {"repository": repo.name, "branch": "main", "refType": "commit", "ref": ref or repo.initial}
        self.workflow_id = admin.start(flow_name, {}, workspace=workspace)
        self.task = self.poll()

    def poll(self) -> dict[str, Any]:
        (task,) = self.client.poll_batch(self.task_name, 1)
        return task

    def publish(self, runtime: LakeFSWorkspaceRuntime, tmp_path: Path, content: bytes = b"published") -> str:
        attempt_dir = tmp_path / f"attempt-{uuid.uuid4().hex[:8]}"
        attempt_dir.mkdir()
        output = run_workspace_attempt(
            workspace=self.task["inputData"]["workspace"],
            spec=WorkspaceSpec(prefix="/data"),
            attempt=AttemptSnapshot.from_task(self.task),
            execution_id=uuid.uuid4().hex,
            attempt_dir=attempt_dir,
            runtime=runtime,
            fence=lambda: None,
            run_body=lambda root: (root / "edit.txt").write_bytes(content),
        )
        self.output = output
        return str(output["workspace"]["ref"])

    def report(self, status: str, output: dict[str, Any] | None = None) -> None:
        result = {"workflowInstanceId": self.workflow_id, "taskId": self.task["taskId"], "status": status}
        if output is not None:
            result["outputData"] = output
        else:
            result["reasonForIncompletion"] = "lost after publishing"
        self.admin.call("POST", "/tasks", result)

    def status(self) -> str:
        return str(self.admin.workflow(self.workflow_id)["status"])


def reconcile(repo: Repo, conductor_client: ConductorClient, **options: Any) -> list[Decision]:
    return Reconciler(repo.client, conductor_client, repo.name, **options).reconcile(["main"])


def protect_main(repo: Repo) -> None:
    lakefs_sdk.RepositoriesApi(repo.sdk).set_branch_protection_rules(
        repo.name, [lakefs_sdk.BranchProtectionRule(pattern="main")]
    )


def test_a_publication_whose_task_failed_for_good_is_reverted_once(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    protect_main(repo)
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    assert flow.status() == "FAILED", "retryCount 0: the failure exhausts the retries"

    (decision,) = reconcile(repo, conductor_client)

    head = repo.head()
    assert (decision.action, decision.publication, decision.revert) == ("reverted", published, head.id)
    assert "ended FAILED" in decision.reason and "is FAILED" in decision.reason
    assert head.first_parent == published
    assert head.metadata[KIND] == KIND_REVERT and head.metadata[REVERTS] == published
    assert repo.tree(head.id) == repo.tree(repo.initial)

    assert reconcile(repo, conductor_client) == [], "the second run finds nothing left to do"
    assert repo.head().id == head.id


def test_an_orphan_someone_reverted_by_hand_is_reported_as_already_reverted(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    lakefs_sdk.BranchesApi(repo.sdk).revert_branch(
        repo.name, "main", lakefs_sdk.RevertCreation(ref=published, parent_number=0)
    )
    by_hand = repo.head().id

    (decision,) = reconcile(repo, conductor_client)

    assert (decision.action, decision.failed) == ("already reverted", False)
    assert "already undone" in decision.reason
    assert repo.head().id == by_hand


def test_a_branch_that_only_inherited_an_orphan_is_left_alone(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    repo.create_branch("copy", published)

    (decision,) = Reconciler(repo.client, conductor_client, repo.name).reconcile(["copy"])

    assert (decision.action, decision.reason) == ("kept", f"published to {repo.name}/main; this branch only inherited it")
    assert repo.client.get_commit(repo.name, "copy").id == published


def test_a_publication_conductor_recorded_is_kept(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("COMPLETED", flow.output)
    assert flow.status() == "COMPLETED"

    (decision,) = reconcile(repo, conductor_client)

    assert (decision.action, decision.failed) == ("kept", False)
    assert "recorded it as the output" in decision.reason
    assert repo.head().id == published


def test_a_publication_of_a_running_attempt_is_kept(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)

    (decision,) = reconcile(repo, conductor_client)

    assert (decision.action, decision.reason) == ("kept", f"attempt {flow.task['taskId']}#0 of step0 is still IN_PROGRESS")
    assert repo.head().id == published


def test_a_failed_attempt_whose_retry_is_pending_is_kept(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo, retryCount=1, retryDelaySeconds=0)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    assert flow.status() == "RUNNING"

    (decision,) = reconcile(repo, conductor_client)

    assert decision.action == "kept" and "replaces it" in decision.reason
    assert repo.head().id == published


def test_a_terminated_workflow_is_rolled_back_below_a_foreign_commit(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    foreign = repo.commit_files("main", {"other/outside.txt": b"someone else"}, message="human edit")
    admin.call("DELETE", f"/workflow/{flow.workflow_id}?reason=operator")
    assert flow.status() == "TERMINATED"

    (decision,) = reconcile(repo, conductor_client)

    head = repo.head()
    assert (decision.action, decision.publication) == ("reverted", published)
    assert "ended CANCELED" in decision.reason and "TERMINATED" in decision.reason
    assert head.first_parent == foreign, "the foreign commit stays; the revert lands on top of it"
    assert repo.tree(head.id) == {**repo.tree(repo.initial), "other/outside.txt": b"someone else"}


def test_a_revert_that_conflicts_with_a_later_commit_fails_and_changes_nothing(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    flow.publish(runtime, tmp_path)
    foreign = repo.commit_files("main", {"data/edit.txt": b"edited again by hand"})
    flow.report("FAILED")

    (decision,) = reconcile(repo, conductor_client)

    assert (decision.action, decision.failed) == ("failed", True)
    assert "revert refused" in decision.reason and "409" in decision.reason
    assert repo.head().id == foreign


def test_a_publication_another_publication_builds_on_is_kept(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    first = Flow(admin, conductor_client, repo)
    published = first.publish(runtime, tmp_path)
    first.report("FAILED")
    second = Flow(admin, conductor_client, repo, ref=published)
    built_on_it = second.publish(runtime, tmp_path, b"second")

    decisions = reconcile(repo, conductor_client)

    assert [(d.publication, d.action) for d in decisions] == [(built_on_it, "kept"), (published, "kept")]
    assert decisions[1].reason == f"publication {built_on_it} builds on it"
    assert repo.head().id == built_on_it


def test_a_workflow_filter_reverts_only_that_workflows_publications(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    first = Flow(admin, conductor_client, repo)
    below = first.publish(runtime, tmp_path)
    first.report("FAILED")
    second = Flow(admin, conductor_client, repo, ref=below)
    above = second.publish(runtime, tmp_path, b"second")
    second.report("FAILED")

    (decision,) = reconcile(repo, conductor_client, workflow_id=second.workflow_id)
    assert (decision.publication, decision.action) == (above, "reverted")
    assert repo.tree(repo.head().id) == repo.tree(below)

    (decision,) = reconcile(repo, conductor_client, workflow_id=first.workflow_id)
    assert (decision.publication, decision.action) == (below, "reverted")
    assert repo.tree(repo.head().id) == repo.tree(repo.initial)


def test_a_lost_revert_answer_is_resolved_by_reading_the_branch(
    lakefs: Any, admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo,
    runtime: LakeFSWorkspaceRuntime, tmp_path: Path,
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    lakefs.faults.add(FaultRule(operation="revertBranch", drop_after_apply_rate=1.0, times=1))
    try:
        (decision,) = reconcile(repo, conductor_client)
    finally:
        lakefs.faults.clear()

    assert (decision.action, decision.revert) == ("reverted", repo.head().id)
    assert repo.tree(repo.head().id) == repo.tree(repo.initial)
    assert reconcile(repo, conductor_client) == []


def test_a_revert_racing_the_tasks_own_retry_is_withdrawn(
    lakefs: Any, admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo,
    runtime: LakeFSWorkspaceRuntime, tmp_path: Path,
) -> None:
    """The retry replaced the orphan with the same content just before our revert landed: undo ours."""
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    task = {key: value for key, value in repo.head().metadata.items() if key.startswith("perago.")}

    def retry_publishes_meanwhile(operation: str) -> None:
        repo.client.revert(repo.name, "main", published, message="retry replaces", metadata={
            **task, KIND: KIND_REVERT, REVERTS: published, EXECUTION_ID: "retry"})
        repo.commit_files("main", {"data/edit.txt": b"published"}, content_type="text/plain", metadata={
            **task, KIND: KIND_PUBLICATION, EXECUTION_ID: "retry"})

    lakefs.faults.add(FaultRule(operation="revertBranch", before_apply=retry_publishes_meanwhile, times=1))
    try:
        (decision,) = reconcile(repo, conductor_client)
    finally:
        lakefs.faults.clear()

    assert (decision.action, decision.failed) == ("failed", True)
    assert "was withdrawn" in decision.reason
    assert repo.tree(repo.head().id)["data/edit.txt"] == b"published", "the retry's publication survives"


def test_only_the_window_and_the_commit_bound_are_inspected(
    admin: ConductorAdmin, conductor_client: ConductorClient, repo: Repo, runtime: LakeFSWorkspaceRuntime, tmp_path: Path
) -> None:
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    repo.commit_files("main", {"other/outside.txt": b"later"})
    flow.report("FAILED")

    assert reconcile(repo, conductor_client, max_commits=1, dry_run=True) == []
    assert reconcile(repo, conductor_client, window_seconds=3600, now=time.time() + 7200, dry_run=True) == []
    (decision,) = reconcile(repo, conductor_client, max_commits=2, dry_run=True)
    assert (decision.publication, decision.action) == (published, "would revert")


def test_a_workflow_terminated_while_perago_start_publishes_is_rolled_back(
    lakefs: Any, admin: ConductorAdmin, conductor: ConductorEmulator, conductor_client: ConductorClient,
    repo: Repo, tmp_path: Path,
) -> None:
    """The real worker: the workflow is terminated between the attempt fence and the merge."""
    flow_name = admin.setup_single_task_workflow("runtime.notes")
    workspace = {"repository": repo.name, "branch": "main", "refType": "commit", "ref": repo.initial}
    workflow_id = admin.start(flow_name, {"name": "late", "text": "unconfirmed"}, workspace=workspace)
    lakefs.faults.add(FaultRule(
        operation="mergeIntoBranch", times=1,
        before_apply=lambda operation: admin.call("DELETE", f"/workflow/{workflow_id}?reason=operator"),
    ))
    environment = {
        **os.environ, **_environment(lakefs, conductor.url),
        "PYTHONPATH": str(TESTS_DIR),
        "PERAGO_WORKSPACE_ROOT": str(tmp_path / "workspaces"),
        "PERAGO_LOG_ROOT": str(tmp_path / "logs"),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "perago.cli", "start", "runtime.workers.notes", "--execution-mode", "thread"],
        cwd=tmp_path, env=environment, stderr=subprocess.PIPE,
    )
    try:
        (workflow,) = admin.wait_for_workflows([workflow_id], timeout=60)
        published = _wait_for_publication(repo)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
        lakefs.faults.clear()
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert workflow["status"] == "TERMINATED"
    assert repo.tree(published)["notes/late.txt"] == b"unconfirmed"

    (decision,) = reconcile(repo, conductor_client)

    assert (decision.action, decision.publication) == ("reverted", published)
    assert "ended CANCELED" in decision.reason
    assert repo.tree(repo.head().id) == repo.tree(repo.initial)


def _wait_for_publication(repo: Repo) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        head = repo.head()
        if head.metadata.get(KIND) == KIND_PUBLICATION:
            return head.id
        time.sleep(0.05)
    raise AssertionError("the worker never published")


def _environment(lakefs: Any, conductor_url: str) -> dict[str, str]:
    return {"CONDUCTOR_SERVER_URL": conductor_url, **lakefs.env()}


def test_cli_dry_run_reports_and_the_real_run_reverts(
    lakefs: Any,
    admin: ConductorAdmin,
    conductor: ConductorEmulator,
    conductor_client: ConductorClient,
    repo: Repo,
    runtime: LakeFSWorkspaceRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")
    runner = CliRunner(env=_environment(lakefs, conductor.url))
    args = ["reconcile", "--repository", repo.name, "--branch", "main"]

    dry = runner.invoke(app, [*args, "--dry-run"], prog_name="perago")

    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines()[0].startswith(f"would revert: {repo.name}/main {published}: ")
    assert dry.stdout.splitlines()[-1] == "reconcile: 1 would revert"
    assert repo.head().id == published

    real = runner.invoke(app, [*args, "--workflow-id", flow.workflow_id], prog_name="perago")

    head = repo.head()
    assert real.exit_code == 0, real.stderr
    assert real.stdout.splitlines()[0] == (
        f"reverted: {repo.name}/main {published} by {head.id}: "
        f"attempt {flow.task['taskId']}#0 of step0 ended FAILED and workflow {flow.workflow_id} is FAILED"
    )
    assert head.metadata[REVERTS] == published and head.metadata[EXECUTION_ID].startswith("reconcile-")
    assert lakefs.secret_access_key not in real.stdout + real.stderr


def test_cli_with_conductor_unreachable_reverts_nothing_and_fails(
    lakefs: Any,
    admin: ConductorAdmin,
    conductor_client: ConductorClient,
    repo: Repo,
    runtime: LakeFSWorkspaceRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = Flow(admin, conductor_client, repo)
    published = flow.publish(runtime, tmp_path)
    flow.report("FAILED")

    result = CliRunner(env=_environment(lakefs, f"http://127.0.0.1:{_closed_port()}/api")).invoke(
        app, ["reconcile", "-r", repo.name], prog_name="perago"
    )

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"undecided: {repo.name}/main {published}: Conductor could not answer")
    assert result.stderr.splitlines()[-1].startswith("error: Conductor could not answer (GET /tasks/")
    assert result.stderr.splitlines()[-1].endswith("publications it could not judge were left in place")
    assert repo.head().id == published


def test_cli_requires_the_lakefs_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LAKECTL_SERVER_ENDPOINT_URL", "LAKECTL_CREDENTIALS_ACCESS_KEY_ID", "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner(env={"CONDUCTOR_SERVER_URL": "http://127.0.0.1:1/api"}).invoke(
        app, ["reconcile", "-r", "any-repo"], prog_name="perago"
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("error: LakeFS config is required for perago reconcile; set LAKECTL_SERVER_ENDPOINT_URL")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the decision table, against a Conductor double ---------------------------------------

PUBLICATION = "p" * 64
ATTEMPT = PublicationIdentity(
    workflow_instance_id="wf", reference_task_name="render", seq=1, iteration=0,
    task_id="t0", retry_count=0, execution_id="e0",
)


class ConductorDouble:
    """Answers `get_task`/`get_workflow` from a task list, or fails every call with `error`."""

    def __init__(self, tasks: list[dict[str, Any]], status: str = "RUNNING", error: Exception | None = None) -> None:
        self.tasks, self.status, self.error, self.calls = tasks, status, error, 0

    def get_task(self, task_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        for task in self.tasks:
            if task["taskId"] == task_id:
                return task
        raise ConductorClientError("GET", f"/tasks/{task_id}", 404, b'{"message": "No such task found by id"}')

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        self.calls += 1
        return {"workflowId": workflow_id, "status": self.status, "tasks": self.tasks}


def attempt(task_id: str, status: str, retried_from: str | None = None, **fields: Any) -> dict[str, Any]:
    task = {
        "taskId": task_id, "workflowInstanceId": "wf", "referenceTaskName": "render", "status": status,
        "inputData": {"workspace": {"repository": "repo", "branch": "main", "refType": "commit", "ref": "a" * 64}},
    }
    if retried_from:
        task["retriedTaskId"] = retried_from
    return {**task, **fields}


@pytest.mark.parametrize(
    ("tasks", "status", "orphan", "reason"),
    [
        ([attempt("t0", "SKIPPED")], "RUNNING", True, "ended SKIPPED, which Conductor never retries"),
        ([attempt("t0", "COMPLETED", outputData={"workspace": {"ref": "other"}})], "RUNNING", True, "never retries"),
        ([attempt("t0", "COMPLETED", outputData={"workspace": {"ref": PUBLICATION}})], "COMPLETED", False,
         "recorded it as the output"),
        ([attempt("t0", "FAILED"), attempt("t1", "FAILED", "t0"), attempt("t2", "COMPLETED_WITH_ERRORS", "t1")],
         "RUNNING", True, "its last retry t2 ended COMPLETED_WITH_ERRORS"),
        ([attempt("t0", "TIMED_OUT"), attempt("t1", "IN_PROGRESS", "t0")], "RUNNING", False, "t1 is IN_PROGRESS"),
        ([attempt("t0", "FAILED")], "RUNNING", False, "Conductor may still retry it"),
        ([attempt("t0", "FAILED"), attempt("t9", "COMPLETED", inputData={"workspace": {"ref": PUBLICATION}})],
         "FAILED", False, "task render (t9) of the workflow refers to it"),
        ([attempt("t0", "CANCELED")], "TERMINATED", True, "ended CANCELED and workflow wf is TERMINATED"),
        ([attempt("t0", "SCHEDULED")], "PAUSED", False, "is still SCHEDULED"),
    ],
)
def test_the_decision_table(tasks: list[dict[str, Any]], status: str, orphan: bool, reason: str) -> None:
    verdict = ConductorView(ConductorDouble(tasks, status)).verdict(PUBLICATION, ATTEMPT, "repo", "main")
    assert (verdict.orphan, verdict.undecided) == (orphan, False)
    assert reason in verdict.reason


def test_doubt_keeps_the_publication_and_an_outage_stops_the_questions() -> None:
    unknown = ConductorView(ConductorDouble([])).verdict(PUBLICATION, ATTEMPT, "repo", "main")
    assert (unknown.orphan, unknown.undecided, unknown.unanswered) == (False, True, False)

    elsewhere = ConductorView(ConductorDouble([attempt("t0", "FAILED", workflowInstanceId="other")], "FAILED"))
    assert elsewhere.verdict(PUBLICATION, ATTEMPT, "repo", "main").undecided

    unreadable = ConductorView(ConductorDouble([{**attempt("t0", "FAILED"), "status": None}], "FAILED"))
    assert unreadable.verdict(PUBLICATION, ATTEMPT, "repo", "main").unanswered, "a task without a status is unreadable"

    double = ConductorDouble([], error=ConductorTransportError("GET /tasks/t0: ConnectionRefusedError"))
    view = ConductorView(double)
    first, second = (view.verdict(PUBLICATION, ATTEMPT, "repo", "main") for _ in range(2))
    assert (first.orphan, first.unanswered, second.unanswered) == (False, True, True)
    assert double.calls == 1 and second.reason.startswith("not asked: Conductor could not answer")
