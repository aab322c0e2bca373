"""A direct Conductor client for task workers: bytes in, bytes out, nothing hidden.

Speaks exactly the worker endpoints of runtime.md §7 with the SDK's query parameters and
JSON bodies, and meets the bar of runtime.md §8.8:

- batch long-poll (`count` = the caller's free capacity, server wait `poll_timeout_ms`);
- result updates through `POST /tasks/update-v2`, which also hands back the next task,
  with the sticky fallback of conductor-api.md §10 to `POST /tasks` when the server has
  no v2 (405, 501, a routing 404, or the "method not supported" 500 of old servers) —
  a genuine "no such task" 404 never disables v2;
- `deliver_result` retries an update with jittered backoff on transport errors, 5xx,
  408 and 429 only, never on another 4xx, and logs an undeliverable result with its full
  context (the lease stays with `LeaseKeeper` meanwhile, see `lease.py`);
- Orkes token auth when a key id and secret are given (`auth.py`);
- no behaviour read from the environment: everything is an argument (runtime.md W18).

The hot-path methods take and return raw JSON bytes so the process-mode broker can pass
Conductor's task JSON to executors and their TaskResult JSON back without re-encoding;
`poll_batch`/`get_task` parse for callers that want dicts.

Calls with a policy (update with v2 fallback, delivery with retries, task reload) are
written once, as exchanges: generators that yield a `Request` (and get its
`HttpResponse` back, or the `ConductorError` that kept it from being answered thrown
in: a transport failure, or a token that could not be fetched) or a `Pause`, and return
their result. `run` drives one on the calling thread over blocking keep-alive
connections (thread mode, leases, CLI); the process-mode broker drives many at once from
its event loop (`perago.conductor.loop_calls`), so the same rules hold in both.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote, urlencode

from loguru import logger

from perago.conductor.auth import TokenAuth, renewable_rejection
from perago.conductor.backoff import UPDATE_RETRY_BACKOFF, Backoff
from perago.conductor.errors import (
    ConductorError,
    ConductorRejected,
    ConductorUnavailable,
    error_message,
    http_status_error,
)
from perago.conductor.transport import HttpResponse, HttpTransport, ServerAddress

if TYPE_CHECKING:
    from perago.config import ConductorConfig

DEFAULT_POLL_TIMEOUT_MS = 100
DEFAULT_UPDATE_GIVE_UP_AFTER_SECONDS = 900.0
_GENUINE_NOT_FOUND_PREFIXES = ("No such task found by id", "No such workflow found by id")
_EMPTY_ARRAY = b"[]"


class Request(NamedTuple):
    """One HTTP call an exchange wants made: `path` is below the server's base path."""

    method: str
    path: str
    body: bytes | None
    accept: str


@dataclass(frozen=True, slots=True)
class Pause:
    """An exchange wants to wait this long before its next request (retry backoff)."""

    seconds: float


T = TypeVar("T")
Exchange = Generator[Request | Pause, HttpResponse | None, T]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one result: `delivered`, and the next task update-v2 handed back."""

    delivered: bool
    next_task: bytes | None = None


class ConductorClient:
    """One Conductor server, one worker id; safe to share between threads."""

    def __init__(
        self,
        server_url: str,
        *,
        worker_id: str,
        auth_key_id: str | None = None,
        auth_key_secret: str | None = None,
        domain: str | None = None,
        poll_timeout_ms: int = DEFAULT_POLL_TIMEOUT_MS,
        request_timeout_seconds: float = 30.0,
        update_give_up_after_seconds: float = DEFAULT_UPDATE_GIVE_UP_AFTER_SECONDS,
        update_retry_backoff: Backoff = UPDATE_RETRY_BACKOFF,
    ) -> None:
        if not worker_id:
            raise ValueError("worker_id must not be empty")
        self.address = ServerAddress.parse(server_url)
        self.worker_id = worker_id
        self.domain = domain or None
        self.poll_timeout_ms = poll_timeout_ms
        self.update_give_up_after_seconds = update_give_up_after_seconds
        self._update_retry_backoff = update_retry_backoff
        self._transport = HttpTransport(self.address, timeout_seconds=request_timeout_seconds)
        self._auth = (
            TokenAuth(self._transport, auth_key_id, auth_key_secret) if auth_key_id and auth_key_secret else None
        )
        self._update_v2 = True
        self._v2_lock = threading.Lock()
        self._poll_paths: dict[tuple[str, int], str] = {}

    @property
    def uses_update_v2(self) -> bool:
        """False once the server showed it has no update-v2 (sticky for this client)."""
        return self._update_v2

    # -- polling -------------------------------------------------------------------------

    def poll_batch_raw(self, task_type: str, count: int) -> bytes:
        """Up to `count` tasks as Conductor's JSON array bytes (`[]` when none)."""
        if count < 1:
            return _EMPTY_ARRAY
        path = self._poll_path(task_type, count)
        response = self._call("GET", path, None, "*/*")
        if response.status == 204 or not response.body:
            return _EMPTY_ARRAY
        if response.status >= 300:
            raise http_status_error("GET", path, response.status, response.body)
        return response.body

    def poll_batch(self, task_type: str, count: int) -> list[dict[str, Any]]:
        """Up to `count` tasks, parsed; entries without a task id are dropped (as the SDK does)."""
        return parse_tasks(self.poll_batch_raw(task_type, count))

    def _poll_path(self, task_type: str, count: int) -> str:
        key = (task_type, count)
        path = self._poll_paths.get(key)
        if path is None:
            query = {"workerid": self.worker_id, "count": count, "timeout": self.poll_timeout_ms}
            if self.domain:
                query["domain"] = self.domain
            path = f"/tasks/poll/batch/{quote(task_type, safe='')}?{urlencode(query)}"
            if len(self._poll_paths) < 4096:
                self._poll_paths[key] = path
        return path

    # -- result updates ------------------------------------------------------------------

    def update_once(self, result_json: bytes, *, want_next: bool = True) -> bytes | None:
        """Send one TaskResult once; return the next task's JSON bytes if update-v2 gave one.

        Raises `ConductorUnavailable` (worth retrying) or `ConductorRejected` (not).
        `want_next=False` uses the plain update so no new task is handed out (drain).
        """
        return self.run(self.update_exchange(result_json, want_next=want_next))

    def update_exchange(self, result_json: bytes, *, want_next: bool = True) -> Exchange[bytes | None]:
        """`update_once` as an exchange."""
        if want_next and self._update_v2:
            response = yield Request("POST", "/tasks/update-v2", result_json, "application/json")
            assert response is not None
            if response.status < 300:
                if response.status == 200 and b'"taskId"' in response.body:
                    return response.body
                return None
            if not _update_v2_missing(response):
                raise http_status_error("POST", "/tasks/update-v2", response.status, response.body)
            self._switch_to_update_v1(response)
        response = yield Request("POST", "/tasks", result_json, "text/plain")
        assert response is not None
        if response.status >= 300:
            raise http_status_error("POST", "/tasks", response.status, response.body)
        return None

    def deliver_result(
        self,
        result_json: bytes,
        *,
        task_id: str,
        workflow_instance_id: str,
        want_next: bool = True,
        abort: threading.Event | None = None,
        give_up_after_seconds: float | None = None,
    ) -> Delivery:
        """Send a TaskResult until it is accepted, refused for good, or retrying must stop.

        Retries transport errors, 5xx, 408 and 429 with jittered backoff for at most
        `give_up_after_seconds` (default: the client's `update_give_up_after_seconds`), or
        until `abort` is set. A permanent refusal or
        giving up logs `task result undeliverable` with the whole result and the reason.
        """
        exchange = self.delivery_exchange(
            result_json,
            task_id=task_id,
            workflow_instance_id=workflow_instance_id,
            want_next=want_next,
            abort=abort,
            give_up_after_seconds=give_up_after_seconds,
        )
        return self.run(exchange, abort=abort)

    def delivery_exchange(
        self,
        result_json: bytes,
        *,
        task_id: str,
        workflow_instance_id: str,
        want_next: bool = True,
        abort: threading.Event | None = None,
        give_up_after_seconds: float | None = None,
    ) -> Exchange[Delivery]:
        """`deliver_result` as an exchange."""
        budget = self.update_give_up_after_seconds if give_up_after_seconds is None else give_up_after_seconds
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                return Delivery(True, (yield from self.update_exchange(result_json, want_next=want_next)))
            except ConductorRejected as exc:
                self._log_undeliverable(result_json, task_id, workflow_instance_id, attempts, started, exc)
                return Delivery(False)
            except ConductorUnavailable as exc:
                delay = self._update_retry_backoff.delay(attempts)
                out_of_time = time.monotonic() - started + delay > budget
                if out_of_time or (abort is not None and abort.is_set()):
                    self._log_undeliverable(result_json, task_id, workflow_instance_id, attempts, started, exc)
                    return Delivery(False)
                logger.warning(
                    "task result update failed; retrying",
                    task_id=task_id,
                    workflow_instance_id=workflow_instance_id,
                    attempt=attempts,
                    retry_in_seconds=round(delay, 3),
                    error=str(exc),
                )
                yield Pause(delay)

    def _log_undeliverable(
        self,
        result_json: bytes,
        task_id: str,
        workflow_instance_id: str,
        attempts: int,
        started: float,
        error: Exception,
    ) -> None:
        logger.error(
            "task result undeliverable",
            task_id=task_id,
            workflow_instance_id=workflow_instance_id,
            worker_id=self.worker_id,
            server=self.address.display(),
            attempts=attempts,
            elapsed_seconds=round(time.monotonic() - started, 3),
            error_type=type(error).__name__,
            error=str(error),
            task_result=result_json.decode("utf-8", "replace"),
        )

    def _switch_to_update_v1(self, response: HttpResponse) -> None:
        with self._v2_lock:
            if not self._update_v2:
                return
            self._update_v2 = False
        logger.warning(
            "Conductor has no update-v2 endpoint; sending results with POST /tasks from now on",
            server=self.address.display(),
            status=response.status,
            message=error_message(response.body),
        )

    def update_v2_relay(self) -> tuple[str, int, bytes] | None:
        """(host, port, request head) for the dispatcher's relay to send update-v2 itself,
        or `None` where it cannot: over https, with token auth (the relay neither speaks TLS
        nor renews tokens), or once the server showed it has no update-v2."""
        if self.address.scheme != "http" or self._auth is not None or not self._update_v2:
            return None
        head = self._transport.head_with_length("POST", "/tasks/update-v2", self._headers("application/json"))
        return self.address.host, self.address.port, head

    # -- lease, task, taskdef ------------------------------------------------------------

    def extend_lease(self, task_id: str, workflow_instance_id: str) -> None:
        """Push the task's response-timeout deadline forward (`extendLease: true`, v1 endpoint)."""
        body = json.dumps(
            {
                "workflowInstanceId": workflow_instance_id,
                "taskId": task_id,
                "status": "IN_PROGRESS",
                "extendLease": True,
            },
            separators=(",", ":"),
        ).encode()
        response = self._call("POST", "/tasks", body, "text/plain")
        if response.status >= 300:
            raise http_status_error("POST", "/tasks", response.status, response.body)

    def get_task_raw(self, task_id: str) -> bytes:
        """The task's current JSON (`GET /tasks/{taskId}`), used by the attempt fence."""
        return self.run(self.get_task_exchange(task_id))

    def get_task_exchange(self, task_id: str) -> Exchange[bytes]:
        """`get_task_raw` as an exchange."""
        path = f"/tasks/{quote(task_id, safe='')}"
        response = yield Request("GET", path, None, "application/json")
        assert response is not None
        if response.status >= 300 or response.status == 204:
            raise http_status_error("GET", path, 404 if response.status == 204 else response.status, response.body)
        return response.body

    def get_task(self, task_id: str) -> dict[str, Any]:
        task = json.loads(self.get_task_raw(task_id))
        if not isinstance(task, dict):
            raise ValueError(f"Conductor answered GET /tasks/{task_id} with a non-object")
        return task

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow with its tasks (`GET /workflow/{workflowId}`), read by `perago reconcile`."""
        path = f"/workflow/{quote(workflow_id, safe='')}?includeTasks=true"
        response = self._call("GET", path, None, "application/json")
        if response.status >= 300 or response.status == 204:
            raise http_status_error("GET", path, 404 if response.status == 204 else response.status, response.body)
        workflow = json.loads(response.body)
        if not isinstance(workflow, dict):
            raise ValueError(f"Conductor answered GET /workflow/{workflow_id} with a non-object")
        return workflow

    def taskdef_exists(self, name: str) -> bool:
        """True if a TaskDef named exactly `name` is registered; decided by status, never by text."""
        path = f"/metadata/taskdefs/{quote(name, safe='')}"
        response = self._call("GET", path, None, "application/json")
        if response.status == 404 or response.status == 204:
            return False
        if response.status >= 300:
            raise http_status_error("GET", path, response.status, response.body)
        return True

    def close(self) -> None:
        self._transport.close()

    # -- plumbing ------------------------------------------------------------------------

    def run(self, exchange: Exchange[T], *, abort: threading.Event | None = None) -> T:
        """Drive `exchange` on this thread: blocking requests, pauses as sleeps (cut short by `abort`)."""
        answer: HttpResponse | None = None
        failure: ConductorError | None = None
        while True:
            try:
                step = exchange.send(answer) if failure is None else exchange.throw(failure)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            answer = failure = None
            if isinstance(step, Pause):
                if abort is not None:
                    abort.wait(step.seconds)
                else:
                    time.sleep(step.seconds)
                continue
            try:
                answer = self._call(*step)
            except ConductorError as exc:  # no answer, or no token to send it with
                failure = exc

    def encode(self, request: Request) -> tuple[bytes, str | None]:
        """`request` as bytes with the current auth header, and the token it carries."""
        headers = self._headers(request.accept)
        data = self._transport.encode(request.method, request.path, request.body, headers)
        return data, headers.get("X-Authorization")

    def renewed_auth(self, response: HttpResponse, token: str | None) -> bool:
        """True when `response` refused an expired/invalid `token` and a new one was
        fetched: the request is worth sending once more."""
        auth = self._auth
        if auth is None or not renewable_rejection(response.status, response.body):
            return False
        auth.renew(token)
        return True

    @property
    def request_timeout_seconds(self) -> float:
        return self._transport.timeout_seconds

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._auth is not None:
            headers.update(self._auth.headers())
        return headers

    def _call(self, method: str, path: str, body: bytes | None, accept: str) -> HttpResponse:
        headers = self._headers(accept)
        response = self._transport.request(method, path, body, headers)
        if self.renewed_auth(response, headers.get("X-Authorization")):
            response = self._transport.request(method, path, body, self._headers(accept))
        return response


def parse_tasks(raw: bytes) -> list[dict[str, Any]]:
    """Conductor's poll answer as task dicts; anything without a task id is skipped."""
    if not raw or raw == _EMPTY_ARRAY:
        return []
    parsed = json.loads(raw)
    if not isinstance(parsed, list):
        raise ValueError("Conductor's batch poll answer is not a JSON array")
    return [task for task in parsed if isinstance(task, dict) and task.get("taskId")]


def _update_v2_missing(response: HttpResponse) -> bool:
    """conductor-api.md §10: does this answer mean "no update-v2 here" (not "bad request")?"""
    status = response.status
    if status in (405, 501):
        return True
    message = error_message(response.body)
    if status == 404:
        return not message.startswith(_GENUINE_NOT_FOUND_PREFIXES)
    if status == 500:
        return "not supported" in message
    return False


def client_from_config(conductor: ConductorConfig, *, worker_id: str, **options: Any) -> ConductorClient:
    """A client for `RuntimeConfig.conductor`: server URL plus the optional auth key/secret pair."""
    secret = conductor.auth_secret.get_secret_value() if conductor.auth_secret is not None else None
    return ConductorClient(
        conductor.server_url,
        worker_id=worker_id,
        auth_key_id=conductor.auth_key,
        auth_key_secret=secret,
        **options,
    )
