"""A thin, thread-safe wrapper over the official `lakefs-sdk` for the calls perago makes.

Why a wrapper: every call gets an explicit timeout (W-15) and retries are configured
explicitly instead of urllib3's defaults (W-16): connection failures are retried for any
method (nothing reached the server), read failures only for GET/HEAD, and never for a
merge or a revert, whose outcome the publisher resolves itself by re-reading the branch
(W-17). Object bodies bypass the SDK: one streaming request per object over
`object_http`'s keep-alive connections, never 64 KiB ranged requests (W-19, W-22).
Failures become `LakeFSError`s whose text carries the operation, status and server
message, never request headers: the secret cannot reach a log line or a failure reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import lakefs_sdk
import urllib3
from lakefs_sdk.exceptions import ApiException

from perago.workspace.errors import LakeFSError
from perago.workspace.manifest import RemoteObject
from perago.workspace.content_digest import digest_of_fd
from perago.workspace.http_wire import Response
from perago.workspace.object_http import ObjectHttp, ObjectHttpError, read_body_into, thread_buffer, write_all

DEFAULT_CALL_TIMEOUT_SECONDS = 60.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
LIST_PAGE_SIZE = 1000
BULK_DELETE_BATCH = 1000


@dataclass(frozen=True)
class ObjectRead:
    """What one download received: its byte count, the ETag lakeFS sent with it, and the
    digests of the bytes written."""

    size: int
    etag: str | None
    digest: str
    """The content digest (`content_digest`) of the bytes."""
    md5: str | None = None
    """Their MD5 in hex, when the download was asked for it."""


@dataclass(frozen=True)
class CommitInfo:
    """The fields of a lakeFS commit that publication decisions read."""

    id: str
    parents: tuple[str, ...]
    message: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    creation_date: int = 0
    """Epoch seconds; 0 when the answer that produced this record did not carry it."""

    @property
    def first_parent(self) -> str | None:
        return self.parents[0] if self.parents else None


def normalize_endpoint(endpoint: str) -> str:
    """Apply the SDK's endpoint rule: default scheme http, `/api/v1` when the URL has no path."""
    url = endpoint.strip()
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        url = url.rstrip("/") + "/api/v1"
    return url.rstrip("/")


def _retry_policy() -> urllib3.Retry:
    return urllib3.Retry(
        total=3,
        connect=3,
        read=2,
        status=0,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=0.2,
        raise_on_redirect=True,
        raise_on_status=False,
    )


class LakeFSClient:
    """One per executor process, or shared by every thread in thread mode.

    `pool_size` bounds the kept-alive connections; it should cover the task threads times
    the transfer concurrency, or connections are opened and dropped per transfer.
    """

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        call_timeout_seconds: float = DEFAULT_CALL_TIMEOUT_SECONDS,
        pool_size: int = 64,
    ) -> None:
        configuration = lakefs_sdk.Configuration(
            host=normalize_endpoint(endpoint),
            username=access_key_id,
            password=secret_access_key,
        )
        configuration.retries = _retry_policy()  # type: ignore[assignment]  # SDK annotates None
        configuration.connection_pool_maxsize = pool_size
        self._secret = secret_access_key
        self._api = lakefs_sdk.ApiClient(configuration)
        self._auth_header = configuration.get_basic_auth_token()
        self._objects_http = ObjectHttp(
            configuration.host, pool_size=pool_size, connect_timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS
        )
        self.call_timeout_seconds = call_timeout_seconds
        self.endpoint = configuration.host
        self.config = lakefs_sdk.ConfigApi(self._api)
        self.branches = lakefs_sdk.BranchesApi(self._api)
        self.commits = lakefs_sdk.CommitsApi(self._api)
        self.objects = lakefs_sdk.ObjectsApi(self._api)
        self.refs = lakefs_sdk.RefsApi(self._api)

    def __repr__(self) -> str:
        return f"LakeFSClient(endpoint={self.endpoint!r})"

    # -- error handling -------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        return self.call_timeout_seconds if timeout is None else max(0.001, timeout)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _failure(self, operation: str, error: BaseException) -> LakeFSError:
        if isinstance(error, ApiException):
            status = error.status or None
            detail = _server_message(error.body) or str(error.reason or "")
            return LakeFSError(operation, status, self._redact(detail))
        cause = _transport_cause(error)
        detail = f"{type(cause).__name__}: {cause}"
        return LakeFSError(operation, None, self._redact(detail))

    def _call(self, operation: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            raise self._failure(operation, error) from None

    # -- server ---------------------------------------------------------------------

    def server_version(self, *, timeout: float | None = None) -> str:
        config = self._call(
            "get config", self.config.get_config, _request_timeout=self._timeout(timeout)
        )
        version = config.version_config.version if config.version_config else None
        return version or ""

    # -- commits and branches -------------------------------------------------------

    def get_commit(self, repository: str, ref: str, *, timeout: float | None = None) -> CommitInfo:
        commit = self._call(
            f"get commit {ref!r} of repository {repository!r}",
            self.commits.get_commit,
            repository,
            ref,
            _request_timeout=self._timeout(timeout),
        )
        return _commit_info(commit)

    def log(
        self, repository: str, ref: str, *, timeout: float | None = None
    ) -> Iterator[CommitInfo]:
        """The first-parent history of `ref`, newest first, fetched a page at a time as consumed."""
        after = ""
        while True:
            page = self._call(
                f"log commits of {ref!r} in repository {repository!r}",
                self.refs.log_commits,
                repository,
                ref,
                after=after or None,
                amount=LIST_PAGE_SIZE,
                first_parent=True,
                _request_timeout=self._timeout(timeout),
            )
            for commit in page.results:
                yield _commit_info(commit)
            if not page.pagination.has_more or not page.results:
                return
            after = page.pagination.next_offset

    def create_branch(
        self, repository: str, name: str, source: str, *, hidden: bool = True,
        timeout: float | None = None,
    ) -> str:
        return self._call(
            f"create branch {name!r} in repository {repository!r}",
            self.branches.create_branch,
            repository,
            lakefs_sdk.BranchCreation(name=name, source=source, hidden=hidden),
            _request_timeout=self._timeout(timeout),
        )

    def delete_branch(self, repository: str, name: str, *, timeout: float | None = None) -> bool:
        """Delete a branch; False when it did not exist (an earlier try may have deleted it)."""
        try:
            self._call(
                f"delete branch {name!r} in repository {repository!r}",
                self.branches.delete_branch,
                repository,
                name,
                _request_timeout=self._timeout(timeout),
            )
        except LakeFSError as error:
            if error.status == 404:
                return False
            raise
        return True

    def list_branches(
        self, repository: str, prefix: str, *, timeout: float | None = None
    ) -> Iterator[tuple[str, str]]:
        """Yield (branch, head commit id) for branches starting with `prefix`, hidden ones included."""
        after = ""
        while True:
            page = self._call(
                f"list branches of repository {repository!r}",
                self.branches.list_branches,
                repository,
                prefix=prefix,
                after=after or None,
                amount=LIST_PAGE_SIZE,
                show_hidden=True,
                _request_timeout=self._timeout(timeout),
            )
            for ref in page.results:
                yield ref.id, ref.commit_id
            if not page.pagination.has_more:
                return
            after = page.pagination.next_offset

    def commit(
        self, repository: str, branch: str, message: str, metadata: Mapping[str, str], *,
        timeout: float | None = None,
    ) -> CommitInfo:
        commit = self._call(
            f"commit branch {branch!r} of repository {repository!r}",
            self.commits.commit,
            repository,
            branch,
            lakefs_sdk.CommitCreation(message=message, metadata=dict(metadata), date=None, allow_empty=False),
            _request_timeout=self._timeout(timeout),
        )
        return CommitInfo(commit.id, tuple(commit.parents or ()), commit.message,
                          dict(commit.metadata or {}))

    def merge(
        self, repository: str, source_ref: str, destination: str, *, message: str,
        metadata: Mapping[str, str], timeout: float | None = None,
    ) -> str:
        """Squash-merge `source_ref` into `destination`; returns the new commit id."""
        result = self._call(
            f"merge {source_ref!r} into branch {destination!r} of repository {repository!r}",
            self.refs.merge_into_branch,
            repository,
            source_ref,
            destination,
            merge=lakefs_sdk.Merge(
                message=message,
                metadata=dict(metadata),
                squash_merge=True,
                strategy=None,
                force=False,
                allow_empty=False,
            ),
            _request_timeout=self._timeout(timeout),
        )
        return result.reference

    def revert(
        self, repository: str, branch: str, commit_id: str, *, message: str,
        metadata: Mapping[str, str], timeout: float | None = None,
    ) -> None:
        """Add a commit on `branch` undoing single-parent `commit_id` (allowed under protection)."""
        self._call(
            f"revert commit {commit_id!r} on branch {branch!r} of repository {repository!r}",
            self.branches.revert_branch,
            repository,
            branch,
            lakefs_sdk.RevertCreation(
                ref=commit_id,
                parent_number=0,
                allow_empty=False,
                commit_overrides=lakefs_sdk.CommitOverrides(message=message, metadata=dict(metadata)),
            ),
            _request_timeout=self._timeout(timeout),
        )

    # -- objects --------------------------------------------------------------------

    def list_objects(
        self, repository: str, ref: str, prefix: str, *, timeout: float | None = None
    ) -> Iterator[RemoteObject]:
        """Every object under `prefix` at `ref`, 1000 per page, with content type and metadata."""
        after = ""
        while True:
            page = self._call(
                f"list objects of {ref!r} in repository {repository!r}",
                self.objects.list_objects,
                repository,
                ref,
                user_metadata=True,
                after=after or None,
                amount=LIST_PAGE_SIZE,
                prefix=prefix or None,
                _request_timeout=self._timeout(timeout),
            )
            for item in page.results:
                if item.path_type != "object":
                    continue
                yield RemoteObject(
                    key=item.path,
                    size_bytes=item.size_bytes or 0,
                    checksum=item.checksum,
                    content_type=item.content_type,
                    metadata=dict(item.metadata or {}),
                )
            if not page.pagination.has_more:
                return
            after = page.pagination.next_offset

    def _target(self, resource: str, **query: str) -> str:
        encoded = "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
        return f"{resource}?{encoded}" if encoded else resource

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(self._api.default_headers)
        headers["Authorization"] = self._auth_header
        if extra:
            headers.update(extra)
        return headers

    def _object_failure(self, operation: str, error: ObjectHttpError) -> LakeFSError:
        if error.status is None:
            return LakeFSError(operation, None, self._redact(error.detail))
        detail = _server_message(error.body) or error.reason or error.detail
        return LakeFSError(operation, error.status, self._redact(detail))

    def download_object(
        self, repository: str, ref: str, key: str, fd: int, *, md5: bool,
        timeout: float | None = None,
    ) -> ObjectRead:
        """Write one object into the file `fd` in a single GET (W-19), hashing it on the way:
        always the content digest, the MD5 too when `md5`.

        A body of known length on a plain socket is received in Rust with the GIL released;
        chunked, close-delimited and TLS bodies are read in Python (`_receive_in_python`).
        `timeout` bounds each socket read (a stalled transfer fails), not the whole body.
        """
        operation = f"download {key!r} from {ref!r} of repository {repository!r}"
        target = self._target(
            f"/repositories/{quote(repository, safe='')}/refs/{quote(ref, safe='')}/objects",
            path=key,
        )
        try:
            with self._objects_http.exchange(
                "GET", target, self._headers(), timeout=self._timeout(timeout)
            ) as response:
                etag = response.getheader("ETag")
                if response.can_receive_into_file:
                    size, digest, content_md5 = response.receive_into_file(fd, md5=md5)
                else:
                    size, digest, content_md5 = _receive_in_python(response, fd, md5)
        except ObjectHttpError as error:
            raise self._object_failure(operation, error) from None
        except OSError as error:
            raise self._failure(operation, error) from None
        return ObjectRead(size=size, etag=etag.strip('"') if etag else None, digest=digest, md5=content_md5)

    def upload_object(
        self, repository: str, branch: str, key: str, source: Path, size: int, *,
        content_type: str | None, metadata: Mapping[str, str], timeout: float | None = None,
    ) -> None:
        """Send a local file as the raw body of one upload with `sendfile`, keeping content
        type and metadata (W-22)."""
        operation = f"upload {key!r} to branch {branch!r} of repository {repository!r}"
        target = self._target(
            f"/repositories/{quote(repository, safe='')}/branches/{quote(branch, safe='')}/objects",
            path=key,
        )
        headers = {"Content-Type": content_type or "application/octet-stream"}
        for name, value in metadata.items():
            headers[f"X-Lakefs-Meta-{name}"] = value
        try:
            with open(source, "rb") as body, self._objects_http.exchange(
                "POST", target, self._headers(headers), timeout=self._timeout(timeout),
                body=body, body_size=size,
            ) as response:
                response.read()
        except ObjectHttpError as error:
            raise self._object_failure(operation, error) from None
        except OSError as error:
            raise self._failure(operation, error) from None

    def delete_objects(
        self, repository: str, branch: str, keys: list[str], *, timeout: float | None = None
    ) -> None:
        """Bulk delete in batches of at most 1000 keys (W-23); any per-key error fails the call."""
        for start in range(0, len(keys), BULK_DELETE_BATCH):
            batch = keys[start : start + BULK_DELETE_BATCH]
            result = self._call(
                f"delete {len(batch)} objects on branch {branch!r} of repository {repository!r}",
                self.objects.delete_objects,
                repository,
                branch,
                lakefs_sdk.PathList(paths=batch),
                _request_timeout=self._timeout(timeout),
            )
            errors = list(result.errors or []) if result is not None else []
            if errors:
                first = errors[0]
                raise LakeFSError(
                    f"delete {first.path!r} on branch {branch!r} of repository {repository!r}",
                    first.status_code,
                    self._redact(first.message),
                )


def _receive_in_python(response: Response, fd: int, md5: bool) -> tuple[int, str, str | None]:
    """The body into `fd` through Python reads; (size, content digest, MD5 hex or None).

    The content digest is taken from the file once written (in Rust, GIL released): the
    Rust hasher cannot borrow the memoryviews the reads fill, and a copy of each would cost
    more than reading the file back from the page cache.
    """
    start = os.lseek(fd, 0, os.SEEK_CUR)
    content_md5 = hashlib.md5(usedforsecurity=False) if md5 else None
    size = 0
    for piece in read_body_into(response, thread_buffer()):
        write_all(fd, piece)
        if content_md5 is not None:
            content_md5.update(piece)
        size += len(piece)
    os.lseek(fd, start, os.SEEK_SET)
    return size, digest_of_fd(fd), content_md5.hexdigest() if content_md5 is not None else None


def _transport_cause(error: BaseException) -> BaseException:
    """The error under urllib3's wrappers: its `MaxRetryError(... Caused by SSLError(
    SSLCertVerificationError(...)))` names the pool and URL around the one useful part."""
    while isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, urllib3.exceptions.SSLError) and error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    return error


def _commit_info(commit: Any) -> CommitInfo:
    return CommitInfo(
        id=commit.id,
        parents=tuple(commit.parents or ()),
        message=commit.message or "",
        metadata=dict(commit.metadata or {}),
        creation_date=int(commit.creation_date or 0),
    )


def _server_message(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    text = str(body).strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return re.sub(r"\s+", " ", text)[:300]
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return parsed["message"]
    return re.sub(r"\s+", " ", text)[:300]
