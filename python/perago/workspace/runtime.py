"""`LakeFSWorkspaceRuntime`: the lakeFS side of a workspace attempt, shared by threads.

One object per executor process (process mode) or one for every task thread (thread
mode): it holds the lakeFS client, the task's `PublishBudget` and the transfer limits,
and keeps no per-attempt state, so concurrent attempts never see each other's data.
The server is checked once, before the first attempt uses it (W-25): perago needs
squash merge (lakeFS ≥ 1.48.1) and hidden branches (≥ 1.44).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger

from perago.config import DEFAULT_WORKSPACE_GC_TTL, LakeFSConfig
from perago.controls import PublishBudget
from perago.errors import RuntimeConfigError
from perago.workspace.errors import LakeFSError, WorkspaceContractError
from perago.workspace.identity import PublicationIdentity
from perago.workspace.keys import WorkspaceProjection
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.manifest import ChangeSet, ChangeSurvey, Manifest, survey_changes
from perago.workspace.object_cache import DEFAULT_CACHE_MAX_BYTES, ObjectCache
from perago.workspace.publish import (
    DEFAULT_PUBLISH_DEADLINE_SECONDS,
    Deadline,
    Publisher,
)
from perago.workspace.staging import (
    DEFAULT_STAGING_TTL_SECONDS,
    StagedWorkspace,
    discard_staging_branch,
    stage_changes,
    sweep_stale_staging_branches,
)
from perago.workspace.transfer import DEFAULT_CONCURRENCY, download_workspace, retain_unchanged

MIN_SERVER_VERSION = (1, 48, 1)
DEFAULT_SWEEP_INTERVAL_SECONDS = 3600.0
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_server_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


class LakeFSWorkspaceRuntime:
    """Download, change detection, staging, fenced publication and no-op completion."""

    def __init__(
        self,
        client: LakeFSClient,
        *,
        publish_budget: PublishBudget | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        staging_ttl_seconds: float = DEFAULT_STAGING_TTL_SECONDS,
        sweep_interval_seconds: float = DEFAULT_SWEEP_INTERVAL_SECONDS,
        object_cache: bool = True,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        cache_max_age_seconds: float = DEFAULT_WORKSPACE_GC_TTL.total_seconds(),
        verify_md5: bool = True,
    ) -> None:
        """`object_cache` turns the local object cache on (W-18, see `object_cache`);
        `verify_md5` compares each download with lakeFS's checksum where that is an MD5
        (W-19). Turn it off for storage whose ETags look like MD5s but are not (S3 SSE-KMS):
        sizes and ETags are still checked."""
        self.client = client
        self.publish_budget = publish_budget
        self.concurrency = concurrency
        self.staging_ttl_seconds = staging_ttl_seconds
        self.sweep_interval_seconds = sweep_interval_seconds
        self.object_cache_enabled = object_cache
        self.cache_max_bytes = cache_max_bytes
        self.cache_max_age_seconds = cache_max_age_seconds
        self.verify_md5 = verify_md5
        self._lock = threading.Lock()
        self._server_version: str | None = None
        self._last_sweep: dict[str, float] = {}
        self._caches: dict[Path, ObjectCache] = {}

    @classmethod
    def from_config(
        cls, config: LakeFSConfig, *, publish_budget: PublishBudget | None = None, **options: Any
    ) -> LakeFSWorkspaceRuntime:
        """One runtime per executor process (or per thread-mode worker) from the LAKECTL_*
        settings; `options` are the constructor's keyword arguments."""
        client = LakeFSClient(
            config.endpoint_url,
            config.access_key_id,
            config.secret_access_key.get_secret_value(),
        )
        return cls(client, publish_budget=publish_budget, **options)

    # -- server and input -----------------------------------------------------------

    def check_server(self) -> str:
        """Refuse a lakeFS server older than perago's floor; cached after the first success."""
        with self._lock:
            if self._server_version is not None:
                return self._server_version
        version_text = self.client.server_version()
        version = parse_server_version(version_text)
        if version is None or version < MIN_SERVER_VERSION:
            floor = ".".join(map(str, MIN_SERVER_VERSION))
            raise RuntimeConfigError(
                f"lakeFS server at {self.client.endpoint} reports version {version_text!r}; "
                f"perago needs lakeFS >= {floor} (squash merge, hidden branches)"
            )
        with self._lock:
            self._server_version = version_text
        return version_text

    def resolve_input_ref(self, repository: str, ref: str) -> str:
        """The full commit id `ref` names; branch and tag names are refused terminally (W-08)."""
        try:
            commit = self.client.get_commit(repository, ref)
        except LakeFSError as error:
            if error.status in (400, 404):
                raise WorkspaceContractError(
                    f"workspace ref {ref!r} does not name a commit of repository {repository!r}: "
                    f"{error.detail}"
                ) from None
            raise
        if commit.id == ref:
            return ref
        if re.fullmatch(r"[0-9a-f]{6,63}", ref) and commit.id.startswith(ref):
            return commit.id
        raise WorkspaceContractError(
            f"workspace ref {ref!r} is not a commit id (it currently resolves to {commit.id}); "
            f"refType 'commit' requires an immutable commit id"
        )

    # -- attempt steps --------------------------------------------------------------

    def object_cache(self, cache_dir: Path | None) -> ObjectCache | None:
        """The cache kept in `cache_dir` (one object per directory), or None when disabled."""
        if cache_dir is None or not self.object_cache_enabled:
            return None
        with self._lock:
            cache = self._caches.get(cache_dir)
            if cache is None:
                cache = ObjectCache(
                    cache_dir,
                    namespace=self.client.endpoint,
                    max_bytes=self.cache_max_bytes,
                    max_age_seconds=self.cache_max_age_seconds,
                )
                self._caches[cache_dir] = cache
            return cache

    def download(
        self, repository: str, ref: str, projection: WorkspaceProjection, root: Path,
        *, cache_dir: Path | None = None,
    ) -> Manifest:
        return download_workspace(
            self.client, repository, ref, projection, root,
            cache=self.object_cache(cache_dir), verify_md5=self.verify_md5,
            concurrency=self.concurrency,
        )

    def retain_in_cache(
        self, repository: str, root: Path, manifest: Manifest, cache_dir: Path | None
    ) -> None:
        """Move the files the task left unchanged into the object cache (the attempt is over)."""
        cache = self.object_cache(cache_dir)
        if cache is None:
            return
        try:
            retain_unchanged(root, manifest, repository, cache)
        except Exception as error:  # noqa: BLE001 - housekeeping: the attempt's outcome is decided
            logger.warning("object cache not updated", cache_dir=str(cache_dir), error=str(error))

    def prune_cache_if_due(self, cache_dir: Path | None) -> None:
        cache = self.object_cache(cache_dir)
        if cache is None:
            return
        try:
            cache.prune_if_due()
        except Exception as error:  # noqa: BLE001 - housekeeping, like the staging sweep
            logger.warning("object cache prune failed", cache_dir=str(cache_dir), error=str(error))

    def survey_changes(
        self, root: Path, manifest: Manifest, projection: WorkspaceProjection
    ) -> ChangeSurvey:
        return survey_changes(root, manifest, projection)

    def stage(
        self, identity: PublicationIdentity, repository: str, input_ref: str, survey: ChangeSurvey
    ) -> tuple[StagedWorkspace | None, ChangeSet]:
        return stage_changes(
            self.client, identity, repository, input_ref, survey, concurrency=self.concurrency
        )

    def publish(
        self, identity: PublicationIdentity, repository: str, branch: str, input_ref: str,
        staged: StagedWorkspace,
    ) -> str:
        return self._publisher(identity, repository, branch, input_ref).publish(staged)

    def complete_noop(
        self, identity: PublicationIdentity, repository: str, branch: str, input_ref: str
    ) -> str:
        return self._publisher(identity, repository, branch, input_ref).complete_noop()

    def discard(self, staged: StagedWorkspace) -> None:
        discard_staging_branch(self.client, staged.repository, staged.branch)

    def sweep_if_due(self, repository: str) -> None:
        """Remove stale staging branches of `repository` at most once per sweep interval."""
        now = time.monotonic()
        with self._lock:
            last = self._last_sweep.get(repository)
            if last is not None and now - last < self.sweep_interval_seconds:
                return
            self._last_sweep[repository] = now
        try:
            sweep_stale_staging_branches(
                self.client, repository, max_age_seconds=self.staging_ttl_seconds
            )
        except Exception as error:  # noqa: BLE001 - sweeping is housekeeping
            logger.warning("staging branch sweep failed", repository=repository, error=str(error))

    def _publisher(
        self, identity: PublicationIdentity, repository: str, branch: str, input_ref: str
    ) -> Publisher:
        seconds = (
            float(self.publish_budget.lakefs_merge_timeout_seconds)
            if self.publish_budget is not None
            else DEFAULT_PUBLISH_DEADLINE_SECONDS
        )
        return Publisher(
            client=self.client,
            identity=identity,
            repository=repository,
            branch=branch,
            input_ref=input_ref,
            deadline=Deadline(seconds, f"publication to {repository}/{branch}"),
        )

