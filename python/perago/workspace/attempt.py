"""The seam between the attempt runner and the workspace runtime: one workspace attempt.

The attempt runner (process or thread mode) owns the attempt directory (`<attempt>/meta.json`
written by the Rust core, so no runtime state is visible to the task, W-13), validates
`params` before calling here (so bad params fail before a large download, runtime W-29),
and maps whatever this raises to a Conductor status: `WorkspaceContractError` and
`PreGuardrailViolation` are terminal, the rest (`PostGuardrailViolation`,
`StaleAttemptError`, `PublishFenceError`, `LakeFSError`, ...) retryable. This function
writes the task's files only under `<attempt_dir>/ws`, which it creates and always
removes; downloaded objects are also kept in the object cache beside the attempt
directories (`<attempt_dir>/../.perago-object-cache`, see `object_cache`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from perago._core import (
    ATTEMPT_WORKSPACE_DIR_NAME,
    create_attempt_workspace,
    remove_attempt_workspace,
)
from perago.guards import check_guardrails
from perago.metrics import MetricRecorder, RuntimeMetricContext
from perago.models import WorkspaceInput
from perago.workspace.identity import PublicationIdentity
from perago.workspace.keys import WorkspaceProjection
from perago.workspace.manifest import ChangeSet, Manifest
from perago.workspace.object_cache import OBJECT_CACHE_DIR_NAME
from perago.workspace.runtime import LakeFSWorkspaceRuntime
from perago.workspace.staging import StagedWorkspace
from perago.workspace_spec import WorkspaceSpec

if TYPE_CHECKING:
    from perago.config import RuntimeConfig
    from perago.task import TaskDefinition

TaskBody = Callable[[Path], Any]
"""Runs the task function on the attempt workspace; returns its validated, JSON-ready result."""

AttemptFence = Callable[[], None]
"""Reloads the attempt from Conductor and raises `StaleAttemptError` when it is no longer current."""


def run_workspace_attempt(
    *,
    workspace: WorkspaceInput | Mapping[str, Any],
    spec: WorkspaceSpec,
    attempt: Any,
    execution_id: str,
    attempt_dir: Path,
    runtime: LakeFSWorkspaceRuntime,
    fence: AttemptFence,
    run_body: TaskBody,
    io_metrics: WorkspaceIoMetrics | None = None,
) -> dict[str, Any]:
    """Download, guard, run, and complete one workspace attempt; returns the Conductor `output`.

    `spec` is the task's `WorkspaceSpec` (prefix, pre, post, read_only); `attempt` the
    attempt snapshot (workflow_instance_id, task_id, retry_count, reference_task_name,
    seq, iteration, task_def_name). The output is `{"workspace": {...}, "result": ...}`;
    `workspace.ref` is the input commit (read-only, unchanged workspace) or the commit
    publication left at the head of the branch. `io_metrics` (tasks whose `MetricSpec`
    has `workspace_io` on) records time and bytes of download, upload and publish.
    """
    io = io_metrics or WorkspaceIoMetrics(None, None)
    workspace_input = (
        workspace if isinstance(workspace, WorkspaceInput) else WorkspaceInput.model_validate(workspace)
    )
    identity = PublicationIdentity.of(attempt, execution_id)
    projection = WorkspaceProjection.for_spec_prefix(spec.prefix)
    repository, branch = workspace_input.repository, workspace_input.branch
    root = Path(attempt_dir) / ATTEMPT_WORKSPACE_DIR_NAME
    cache_dir = Path(attempt_dir).parent / OBJECT_CACHE_DIR_NAME

    runtime.check_server()
    input_ref = runtime.resolve_input_ref(repository, workspace_input.ref)
    _prepare_empty_directory(root)
    manifest: Manifest | None = None
    try:
        with io.timer("download"):
            manifest = runtime.download(repository, input_ref, projection, root, cache_dir=cache_dir)
        io.bytes("download", manifest.total_bytes)
        check_guardrails(root, spec.pre, "pre")
        result = run_body(root)
        check_guardrails(root, spec.post, "post")
        if spec.read_only:
            return _output(workspace_input, input_ref, result)

        survey = runtime.survey_changes(root, manifest, projection)
        fence()
        staged: StagedWorkspace | None = None
        changes = ChangeSet(uploads=(), deletes=())
        if survey.may_change:
            with io.timer("upload"):
                staged, changes = runtime.stage(identity, repository, input_ref, survey)
        if staged is None:
            with io.timer("publish"):
                ref = runtime.complete_noop(identity, repository, branch, input_ref)
        else:
            io.bytes("upload", changes.upload_bytes)
            ref = _publish_staged(runtime, identity, repository, branch, input_ref, staged, fence, io)
        logger.info(
            "workspace completed",
            repository=repository,
            branch=branch,
            input_ref=input_ref,
            ref=ref,
            uploads=len(changes.uploads),
            upload_bytes=changes.upload_bytes,
            deletes=len(changes.deletes),
            task_id=identity.task_id,
            execution_id=identity.execution_id,
        )
        return _output(workspace_input, ref, result)
    finally:
        if manifest is not None:
            runtime.retain_in_cache(repository, root, manifest, cache_dir)
        _remove_workspace(root, identity)
        runtime.prune_cache_if_due(cache_dir)
        if not spec.read_only:
            runtime.sweep_if_due(repository)


def _publish_staged(
    runtime: LakeFSWorkspaceRuntime,
    identity: PublicationIdentity,
    repository: str,
    branch: str,
    input_ref: str,
    staged: StagedWorkspace,
    fence: AttemptFence,
    io: WorkspaceIoMetrics,
) -> str:
    try:
        fence()
        with io.timer("publish"):
            return runtime.publish(identity, repository, branch, input_ref, staged)
    finally:
        runtime.discard(staged)


class WorkspaceIoMetrics:
    """`runtime.workspace_io_*` samples (spec §2.11); a no-op without a recorder.

    Upload bytes are the bytes actually sent (changed files only), not the whole workspace;
    upload time includes confirming by content which rewritten files changed, which happens
    while the changed ones are sent.
    """

    def __init__(self, recorder: MetricRecorder | None, context: RuntimeMetricContext | None) -> None:
        self._recorder = recorder if context is not None else None
        self._context = context

    def timer(self, operation: str) -> AbstractContextManager[None]:
        if self._recorder is None or self._context is None:
            return contextlib.nullcontext()
        return self._recorder.runtime_timer(
            "workspace_io_duration_seconds", context=self._context, labels={"operation": operation}
        )

    def bytes(self, operation: str, amount: int) -> None:
        if self._recorder is not None and self._context is not None:
            self._recorder.runtime_histogram(
                "workspace_io_bytes", amount, context=self._context, labels={"operation": operation}
            )


def _output(workspace_input: WorkspaceInput, ref: str, result: Any) -> dict[str, Any]:
    return {
        "workspace": workspace_input.published_output(ref).model_dump(mode="json"),
        "result": result,
    }


def _prepare_empty_directory(root: Path) -> None:
    """Use `root` if it is an empty real directory (the attempt-directory helper may make it)."""
    try:
        root.mkdir()
        return
    except FileExistsError:
        pass
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or any(os.scandir(root)):
        raise FileExistsError(f"attempt workspace {root} already exists and is not an empty directory")


def _remove_workspace(root: Path, identity: PublicationIdentity) -> None:
    try:
        shutil.rmtree(root)
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.error(
            "failed to clean attempt-local workspace",
            workspace_dir=str(root),
            workflow_instance_id=identity.workflow_instance_id,
            task_id=identity.task_id,
            retry_count=identity.retry_count,
            error=str(error),
        )


class LakeFSWorkspaceAttempts:
    """`perago.attempt.WorkspaceRuntime` for one workspace task, over a shared lakeFS runtime.

    `attempt_directory(attempt)` is a context manager yielding the attempt directory
    (created with its `meta.json`, removed on exit: the Rust core's helpers);
    `fence(attempt)` reloads the attempt (directly in thread mode, over the fence RPC in
    process mode) and raises `StaleAttemptError` when it is no longer current.
    """

    def __init__(
        self,
        runtime: LakeFSWorkspaceRuntime,
        spec: WorkspaceSpec,
        *,
        attempt_directory: Callable[[Any], AbstractContextManager[Path]],
        fence: Callable[[Any], None],
        io_metrics: WorkspaceIoMetrics | None = None,
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self._attempt_directory = attempt_directory
        self._fence = fence
        self._io_metrics = io_metrics

    def run_attempt(self, attempt: Any, workspace: WorkspaceInput, body: TaskBody) -> dict[str, Any]:
        with self._attempt_directory(attempt) as attempt_dir:
            return run_workspace_attempt(
                workspace=workspace,
                spec=self.spec,
                attempt=attempt.snapshot,
                execution_id=attempt.execution_id,
                attempt_dir=attempt_dir,
                runtime=self.runtime,
                fence=lambda: self._fence(attempt),
                run_body=body,
                io_metrics=self._io_metrics,
            )


def core_attempt_directory(root: Path) -> Callable[[Any], AbstractContextManager[Path]]:
    """`attempt_directory` for `LakeFSWorkspaceAttempts` backed by the Rust core's helpers.

    Creates `<root>/task_id=…-exec=…/` with `meta.json` and `ws/` for a `perago.attempt.Attempt`
    and removes it afterwards (a removal error is logged; GC is the backstop).
    """

    @contextlib.contextmanager
    def attempt_directory(attempt: Any) -> Iterator[Path]:
        snapshot = attempt.snapshot
        created = create_attempt_workspace(
            root,
            workflow_instance_id=snapshot.workflow_instance_id,
            task_id=snapshot.task_id,
            execution_id=attempt.execution_id,
            retry_count=snapshot.retry_count,
            task_def_name=snapshot.task_def_name,
            owner_worker_id=attempt.worker_id,
            owner_token=uuid.uuid4().hex,
        )
        try:
            yield Path(created.dir)
        finally:
            try:
                remove_attempt_workspace(created.dir)
            except OSError as error:
                logger.error(
                    "failed to clean attempt-local workspace",
                    workspace_dir=str(created.dir),
                    task_id=snapshot.task_id,
                    error=str(error),
                )

    return attempt_directory


def workspace_attempts_from_config(
    task: TaskDefinition,
    config: RuntimeConfig,
    get_task: Callable[[str], Mapping[str, Any]],
    metrics: MetricRecorder | None = None,
) -> LakeFSWorkspaceAttempts:
    """What a worker (executor or thread-mode runner) runs a workspace task's attempts with:
    the LAKECTL_* runtime (its object cache pruned on the workspace GC TTL), attempt
    directories under the workspace root, the attempt fence reloading through `get_task`
    (the broker's fence RPC in process mode, Conductor directly in thread mode), and
    workspace I/O samples on `metrics` when the task's `MetricSpec.workspace_io` asks."""
    from perago.attempt import conductor_attempt_fence
    from perago.errors import RuntimeConfigError

    if config.lakefs is None:
        raise RuntimeConfigError("LakeFS config is required for workspace tasks")
    assert task.workspace is not None
    budget = None if task.workspace.read_only else task.controls.publish_budget
    runtime = LakeFSWorkspaceRuntime.from_config(
        config.lakefs, publish_budget=budget, cache_max_age_seconds=config.workspace_gc_ttl.total_seconds()
    )
    return LakeFSWorkspaceAttempts(
        runtime,
        task.workspace,
        attempt_directory=core_attempt_directory(config.workspace_root),
        fence=conductor_attempt_fence(get_task),
        io_metrics=_io_metrics(task, metrics),
    )


def _io_metrics(task: TaskDefinition, metrics: MetricRecorder | None) -> WorkspaceIoMetrics | None:
    if metrics is None or task.metrics is None or not task.metrics.workspace_io:
        return None
    return WorkspaceIoMetrics(metrics, RuntimeMetricContext(task_name=task.name))
