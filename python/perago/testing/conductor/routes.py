"""The REST surface: paths, parameters, bodies and answers of spec conductor-api.md §2.

`ConductorApp.handle` is the HTTP layer's application. It routes like Spring MVC does
(literal segments beat path variables; a known path with the wrong method is a 405 on
3.32+, a 500 before), applies fault injection and token auth, lets due timeouts fire,
then calls the handler. Every exception becomes an error body; none reaches the socket
layer, so bad input can never take the server down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from perago.testing.conductor.auth import OPEN_PATHS, TokenAuth
from perago.testing.conductor.engine import Engine, require_input, validate_priority
from perago.testing.conductor.errors import (
    BadRequest,
    ConductorError,
    MethodNotAllowed,
    NotFound,
    ServerError,
    TransientError,
    Unauthorized,
    ValidationFailed,
    json_parse_error,
    missing_body,
)
from perago.testing.conductor.faults import NO_FAULT, FaultDecision, FaultPlan
from perago.testing.conductor.http11 import DROP, Cut, Reply, Request, response
from perago.testing.conductor.metadata import java_text
from perago.testing.conductor.queues import queue_name
from perago.testing.conductor.records import TaskRecord, dumps
from perago.testing.conductor.task_result import (
    RESULT_STATUSES,
    RESULT_STATUSES_WITH_CANCELED,
    parse_task_result,
)

log = logging.getLogger("perago.testing.conductor")

JSON = "application/json"
TEXT = "text/plain;charset=UTF-8"
NO_CONTENT = response(204)
EMPTY_OK = response(200)
HEALTH = response(200, b'{"healthResults":[],"suppressedHealthResults":[],"healthy":true}', JSON)

Params = dict[str, str]
HandlerResult = Reply | Awaitable[Reply]
RouteHandler = Callable[[Request, Params], HandlerResult]


def json_reply(text: str, status: int = 200) -> bytes:
    return response(status, text.encode(), JSON)


def text_reply(text: str) -> bytes:
    return response(200, text.encode(), TEXT)


def error_reply(error: ConductorError) -> bytes:
    return json_reply(dumps(error.body()), error.status)


class _Route:
    __slots__ = ("method", "parts", "endpoint", "handler", "literals")

    def __init__(self, method: str, pattern: str, endpoint: str, handler: RouteHandler) -> None:
        self.method = method
        self.parts = [part for part in pattern.split("/") if part]
        self.endpoint = endpoint
        self.handler = handler
        self.literals = sum(1 for part in self.parts if not part.startswith("{"))

    def match(self, segments: list[str]) -> Params | None:
        params: Params = {}
        for part, segment in zip(self.parts, segments, strict=True):
            if part[0] == "{":
                params[part[1:-1]] = unquote(segment) if "%" in segment else segment
            elif part != segment:
                return None
        return params


def _query(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.query, keep_blank_values=True) if request.query else {}


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _required(query: dict[str, list[str]], name: str) -> str:
    """A required query parameter; Spring's MissingServletRequestParameterException is unmapped, so 500."""
    value = _first(query, name)
    if value is None:
        raise ServerError(f"Required request parameter '{name}' for method parameter type String is not present")
    return value


def _optional_int_param(query: dict[str, list[str]], name: str) -> int | None:
    """An Integer query parameter; a value Spring cannot convert is a 500."""
    text = _first(query, name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ServerError(
            f"Method parameter '{name}': Failed to convert value of type 'java.lang.String' to required type "
            f"'java.lang.Integer'; For input string: \"{text}\""
        ) from None


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    if _first(query, name) == "":
        return default
    value = _optional_int_param(query, name)
    return default if value is None else value


def _bool_param(query: dict[str, list[str]], name: str, default: bool) -> bool:
    text = _first(query, name)
    if text is None or text == "":
        return default
    lowered = text.lower()
    if lowered in ("true", "on", "yes", "1"):
        return True
    if lowered in ("false", "off", "no", "0"):
        return False
    raise ServerError(
        f"Method parameter '{name}': Failed to convert value of type 'java.lang.String' to required type 'boolean'; "
        f"Invalid boolean value [{text}]"
    )


def _json_body(request: Request, signature: str) -> Any:
    if not request.body:
        raise missing_body(signature)
    try:
        return json.loads(request.body.decode())
    except (ValueError, UnicodeDecodeError) as error:
        raise json_parse_error(str(error)) from None


class ConductorApp:
    """Routes requests to the engine; one instance per emulated server."""

    def __init__(self, engine: Engine, faults: FaultPlan | None = None) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.behaviour = engine.behaviour
        self.faults = faults
        self.auth = (
            TokenAuth(self.settings.auth_keys, self.settings.token_ttl_seconds, engine.clock) if self.settings.auth_keys else None
        )
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._fault = NO_FAULT  # the current request's faults, read by the poll handlers
        self.request_counts: dict[str, int] = defaultdict(int)
        engine.on_push = self._wake
        self._routes: dict[int, list[_Route]] = {}
        self._literal_routes: dict[tuple[str, str], _Route] = {}  # exact paths, found without matching
        self._register_routes()

    # ------------------------------------------------------------ routing
    def _add(self, method: str, pattern: str, endpoint: str, handler: RouteHandler) -> None:
        route = _Route(method, pattern, endpoint, handler)
        self._routes.setdefault(len(route.parts), []).append(route)
        self._routes[len(route.parts)].sort(key=lambda item: -item.literals)
        if "{" not in pattern:
            self._literal_routes[(method, pattern)] = route

    def _register_routes(self) -> None:
        add = self._add
        add("GET", "/health", "health", lambda request, params: HEALTH)
        if self.behaviour.api_health_alias:
            add("GET", "/api/health", "health", lambda request, params: HEALTH)
        if self.behaviour.version_endpoint:
            add("GET", "/api/version", "version", lambda request, params: text_reply(self.behaviour.version))
        if self.auth is not None:
            add("POST", "/api/token", "token", self._token)
        add("GET", "/api/tasks/poll/{tasktype}", "poll", self._poll)
        add("GET", "/api/tasks/poll/batch/{tasktype}", "batch_poll", self._batch_poll)
        add("POST", "/api/tasks", "update", self._update)
        if self.behaviour.update_v2_exists:
            add("POST", "/api/tasks/update-v2", "update_v2", self._update_v2)
        add("POST", "/api/tasks/{workflowId}/{taskRefName}/{status}", "update_by_ref", self._update_by_ref)
        add("POST", "/api/tasks/{workflowId}/{taskRefName}/{status}/sync", "update_by_ref", self._update_by_ref_sync)
        add("GET", "/api/tasks/{taskId}", "get_task", self._get_task)
        add("POST", "/api/tasks/{taskId}/log", "task_log", self._post_log)
        add("GET", "/api/tasks/{taskId}/log", "task_log", self._get_log)
        add("GET", "/api/tasks/queue/sizes", "queue", self._queue_sizes)
        add("GET", "/api/tasks/queue/size", "queue", self._queue_size)
        add("GET", "/api/tasks/queue/all", "queue", self._queue_all)
        add("GET", "/api/tasks/queue/polldata", "queue", self._poll_data)
        add("GET", "/api/tasks/queue/polldata/all", "queue", self._poll_data_all)
        add("GET", "/api/metadata/taskdefs", "taskdefs", self._list_taskdefs)
        add("POST", "/api/metadata/taskdefs", "taskdefs", self._register_taskdefs)
        add("PUT", "/api/metadata/taskdefs", "taskdefs", self._update_taskdef)
        add("GET", "/api/metadata/taskdefs/{name}", "taskdefs", self._get_taskdef)
        add("DELETE", "/api/metadata/taskdefs/{name}", "taskdefs", self._delete_taskdef)
        add("GET", "/api/metadata/workflow", "workflowdefs", self._list_workflowdefs)
        add("POST", "/api/metadata/workflow", "workflowdefs", self._create_workflowdef)
        add("PUT", "/api/metadata/workflow", "workflowdefs", self._upsert_workflowdefs)
        add("GET", "/api/metadata/workflow/{name}", "workflowdefs", self._get_workflowdef)
        add("POST", "/api/workflow", "start_workflow", self._start_request)
        add("POST", "/api/workflow/{name}", "start_workflow", self._start_by_name)
        add("GET", "/api/workflow/{workflowId}", "get_workflow", self._get_workflow)
        add("GET", "/api/workflow/{workflowId}/status", "get_workflow", self._workflow_status)
        add("DELETE", "/api/workflow/{workflowId}", "workflow_control", self._terminate)
        add("DELETE", "/api/workflow/{workflowId}/remove", "workflow_control", self._remove)
        add("POST", "/api/workflow/{workflowId}/retry", "workflow_control", self._retry)
        add("POST", "/api/workflow/{workflowId}/restart", "workflow_control", self._restart)
        add("PUT", "/api/workflow/{workflowId}/pause", "workflow_control", self._pause)
        add("PUT", "/api/workflow/{workflowId}/resume", "workflow_control", self._resume)

    def _allowed_methods(self, path: str) -> list[str]:
        segments = [segment for segment in path.split("/") if segment]
        return sorted({route.method for route in self._routes.get(len(segments), ()) if route.match(segments) is not None})

    def _options(self, request: Request) -> bytes:
        """Spring MVC's automatic OPTIONS answer: 200 with an `Allow` header (spec §10 item 4)."""
        methods = self._allowed_methods(request.path)
        if not methods:
            return self._unknown_path(request.path)
        allow = ",".join([*methods, "HEAD", "OPTIONS"] if "GET" in methods else [*methods, "OPTIONS"])
        return f"HTTP/1.1 200 OK\r\nAllow: {allow}\r\nContent-Length: 0\r\n\r\n".encode()

    def _route(self, request: Request) -> tuple[_Route, Params]:
        literal = self._literal_routes.get((request.method, request.path))
        if literal is not None:
            return literal, {}
        segments = [segment for segment in request.path.split("/") if segment]
        path_matched = False
        for route in self._routes.get(len(segments), ()):
            params = route.match(segments)
            if params is None:
                continue
            if route.method == request.method:
                return route, params
            path_matched = True
        if path_matched:
            if self.behaviour.wrong_method_is_405:
                raise MethodNotAllowed(f"Request method '{request.method}' is not supported")
            not_supported = "is not supported" if self.behaviour.spring6_messages else "not supported"
            raise ServerError(f"Request method '{request.method}' {not_supported}")
        raise _UnknownPath(request.path)

    # ------------------------------------------------------------ entry
    def handle(self, request: Request) -> HandlerResult:
        if request.method == "OPTIONS":
            return self._options(request)
        if request.method == "HEAD":  # Spring answers HEAD like GET, without the body
            request.method = "GET"
            reply = self.handle(request)
            return _headers_only(reply) if isinstance(reply, (bytes, Cut)) else self._headers_only_when_done(reply)
        try:
            route, params = self._route(request)
        except _UnknownPath as unknown:
            return self._unknown_path(unknown.path)
        except ConductorError as error:
            return error_reply(error)
        self.request_counts[route.endpoint] += 1
        fault = self.faults.decide(route.endpoint) if self.faults is not None else NO_FAULT
        if fault.latency > 0:
            return self._delayed(route, params, request, fault)
        return self._answer(route, params, request, fault)

    async def _delayed(self, route: _Route, params: Params, request: Request, fault: FaultDecision) -> Reply:
        await asyncio.sleep(fault.latency)
        reply = self._answer(route, params, request, fault)
        if isinstance(reply, (bytes, Cut)):
            return reply
        return await reply  # type: ignore[misc]

    def _answer(self, route: _Route, params: Params, request: Request, fault: FaultDecision) -> HandlerResult:
        if fault.drop_before:
            return DROP
        if fault.error_status is not None:
            return error_reply(
                TransientError(f"injected fault: {route.endpoint} answered {fault.error_status}", fault.error_status)
            )
        try:
            if fault.expired_token:
                raise Unauthorized("EXPIRED_TOKEN", "Token expired")
            if self.auth is not None and request.path not in OPEN_PATHS:
                self.auth.check(request.header("x-authorization"))
            self.engine.process_timers()
            self._fault = fault
            reply = route.handler(request, params)
        except ConductorError as error:
            return error_reply(error)
        except Exception as error:  # noqa: BLE001 - a server answers 500, it does not crash
            log.exception("emulator handler %s failed", route.endpoint)
            return error_reply(ServerError(f"{type(error).__name__}: {error}"))
        if fault.drop_after or fault.tear_answer:
            if isinstance(reply, (bytes, Cut)):
                return _cut(reply, fault)
            return self._cut_when_done(reply, fault)
        return reply

    async def _headers_only_when_done(self, pending: Awaitable[Reply]) -> Reply:
        return _headers_only(await pending)

    async def _cut_when_done(self, pending: Awaitable[Reply], fault: FaultDecision) -> Reply:
        return _cut(await pending, fault)

    def _unknown_path(self, path: str) -> bytes:
        if self.behaviour.spring6_messages:
            return error_reply(NotFound(f"No static resource {path.lstrip('/')}."))
        body = {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "status": 404,
            "error": "Not Found",
            "path": path,
        }
        return json_reply(dumps(body), 404)

    # ------------------------------------------------------------ long polls
    def _wake(self, name: str) -> None:
        waiters = self._waiters.pop(name, None)
        if waiters:
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    async def _wait_for_more(self, name: str, ids: list[str], count: int, timeout_ms: int) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        tick = self.settings.tick_seconds
        while len(ids) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(name, []).append(future)
            timer = loop.call_later(min(remaining, tick), _resolve, future)
            try:
                await future
            finally:
                timer.cancel()
                waiting = self._waiters.get(name)
                if waiting is not None and future in waiting:  # woken by the timer, not a push
                    waiting.remove(future)
            self.engine.process_timers()
            ids.extend(self.engine.collect(name, count - len(ids)))
        return ids

    def _poll_common(
        self, task_type: str, worker_id: str | None, domain: str | None, count: int, timeout_ms: int, single: bool
    ) -> HandlerResult:
        engine = self.engine
        if timeout_ms > self.settings.long_poll_cap_ms:
            raise BadRequest(f"Long Poll Timeout value cannot be more than {self.settings.long_poll_cap_ms // 1000} seconds")
        engine.record_poll(task_type, domain, worker_id)
        name = queue_name(task_type, domain)
        ids = engine.collect(name, count)
        fault = self._fault
        if len(ids) >= count or timeout_ms <= 0:
            return self._polled(engine.hand_out(ids, worker_id), single, fault)
        return self._finish_long_poll(name, ids, count, timeout_ms, worker_id, single, fault)

    async def _finish_long_poll(
        self, name: str, ids: list[str], count: int, timeout_ms: int, worker_id: str | None, single: bool, fault: FaultDecision
    ) -> Reply:
        ids = await self._wait_for_more(name, ids, count, timeout_ms)
        try:
            return self._polled(self.engine.hand_out(ids, worker_id), single, fault)
        except Exception as error:  # noqa: BLE001
            log.exception("emulator long poll failed")
            return error_reply(ServerError(f"{type(error).__name__}: {error}"))

    def _polled(self, tasks: list[TaskRecord], single: bool, fault: FaultDecision) -> bytes:
        now = self.engine.now()
        rendered = [task.to_json(now) for task in tasks]
        if fault.redeliver:
            for task in tasks:
                self.engine.requeue_for_redelivery(task)
        if single:
            return json_reply(rendered[0]) if rendered else NO_CONTENT
        return json_reply("[" + ",".join(rendered) + "]")

    def _poll(self, request: Request, params: Params) -> HandlerResult:
        query = _query(request)
        return self._poll_common(params["tasktype"], _first(query, "workerid"), _first(query, "domain"), 1, 100, True)

    def _batch_poll(self, request: Request, params: Params) -> HandlerResult:
        query = _query(request)
        count = _int_param(query, "count", 1)
        timeout = _int_param(query, "timeout", 100)
        return self._poll_common(
            params["tasktype"],
            _first(query, "workerid"),
            _first(query, "domain"),
            count,
            timeout,
            False,
        )

    # ------------------------------------------------------------ updates
    def _update(self, request: Request, params: Params) -> bytes:
        body = _json_body(
            request, "public java.lang.String com.netflix.conductor.rest.controllers.TaskResource.updateTask(TaskResult)"
        )
        result = parse_task_result(body, self.behaviour.canceled_result_accepted, controller_validation=False)
        self.engine.update(result)
        return text_reply(result.task_id)

    def _update_v2(self, request: Request, params: Params) -> HandlerResult:
        forced = self.settings.update_v2_status
        if forced == 404:
            return self._unknown_path(request.path)
        if forced is not None:
            error = MethodNotAllowed(f"Request method '{request.method}' is not supported")
            error.status = forced
            return error_reply(error)
        body = _json_body(
            request, "public ResponseEntity<Task> com.netflix.conductor.rest.controllers.TaskResource.updateTaskV2(TaskResult)"
        )
        result = parse_task_result(body, self.behaviour.canceled_result_accepted, controller_validation=True)
        task = self.engine.update(result)
        if task is None:
            return NO_CONTENT
        if self.behaviour.update_v2_skips_poll_when_not_terminal and not task.terminal:
            return NO_CONTENT
        return self._poll_common(task.step.name, result.worker_id, task.domain, 1, 100, True)

    def _update_by_ref(self, request: Request, params: Params) -> bytes:
        task = self._apply_by_ref(request, params)
        return text_reply(task.task_id if task is not None else "")

    def _update_by_ref_sync(self, request: Request, params: Params) -> bytes:
        task = self._apply_by_ref(request, params)
        if task is None:
            raise NotFound(f"No pending task found for reference name {params['taskRefName']} in workflow {params['workflowId']}")
        return json_reply(task.workflow.to_json(self.engine.now()))

    def _apply_by_ref(self, request: Request, params: Params) -> TaskRecord | None:
        status = params["status"]
        allowed = RESULT_STATUSES_WITH_CANCELED if self.behaviour.canceled_result_accepted else RESULT_STATUSES
        if status not in allowed:
            raise ServerError(
                "Method parameter 'status': Failed to convert value of type 'java.lang.String' to required type "
                f"'com.netflix.conductor.common.metadata.tasks.TaskResult$Status'; No enum constant "
                f"com.netflix.conductor.common.metadata.tasks.TaskResult.Status.{status}"
            )
        output = _json_body(request, "updateTask(String, String, Status, String, Map)")
        if not isinstance(output, dict):
            raise json_parse_error("Cannot deserialize value of type `java.util.LinkedHashMap` from non-object value")
        worker_id = _first(_query(request), "workerid")
        return self.engine.update_by_ref(params["workflowId"], params["taskRefName"], status, worker_id, output)

    # ------------------------------------------------------------ tasks
    def _get_task(self, request: Request, params: Params) -> bytes:
        task = self.engine.tasks.get(params["taskId"])
        if task is None:
            if self.behaviour.unknown_task_is_404:
                raise NotFound(f"Task not found for taskId: {params['taskId']}")
            return NO_CONTENT
        return json_reply(task.to_json(self.engine.now()))

    def _post_log(self, request: Request, params: Params) -> bytes:
        if not request.body:
            raise missing_body("public void com.netflix.conductor.rest.controllers.TaskResource.log(String, String)")
        self.engine.add_log(params["taskId"], request.body.decode("utf-8", "replace"))
        return EMPTY_OK

    def _get_log(self, request: Request, params: Params) -> bytes:
        entries = self.engine.logs.get(params["taskId"])
        return json_reply(dumps(entries)) if entries else NO_CONTENT

    def _queue_sizes(self, request: Request, params: Params) -> bytes:
        types = _query(request).get("taskType")
        if not types:
            raise ServerError('Cannot invoke "java.util.List.stream()" because "taskTypes" is null')
        return json_reply(dumps({task_type: self.engine.queue_size(task_type, None) for task_type in types}))

    def _queue_size(self, request: Request, params: Params) -> bytes:
        query = _query(request)
        task_type = _required(query, "taskType")
        return json_reply(str(self.engine.queue_size(task_type, _first(query, "domain"))))

    def _queue_all(self, request: Request, params: Params) -> bytes:
        return json_reply(dumps(self.engine.all_queue_sizes()))

    def _poll_data(self, request: Request, params: Params) -> bytes:
        task_type = _required(_query(request), "taskType")
        entries = [_poll_data_json(data) for (kind, _), data in self.engine.poll_data.items() if kind == task_type]
        return json_reply(dumps(entries))

    def _poll_data_all(self, request: Request, params: Params) -> bytes:
        return json_reply(dumps([_poll_data_json(data) for data in self.engine.poll_data.values()]))

    # ------------------------------------------------------------ metadata
    def _list_taskdefs(self, request: Request, params: Params) -> bytes:
        return json_reply(dumps(list(self.engine.metadata.taskdefs.values())))

    def _register_taskdefs(self, request: Request, params: Params) -> bytes:
        body = _json_body(request, "registerTaskDef(List<TaskDef>)")
        self.engine.metadata.register_taskdefs(body, self.engine.now())
        return EMPTY_OK

    def _update_taskdef(self, request: Request, params: Params) -> bytes:
        body = _json_body(request, "registerTaskDef(TaskDef)")
        self.engine.metadata.update_taskdef(body, self.engine.now())
        return EMPTY_OK

    def _get_taskdef(self, request: Request, params: Params) -> bytes:
        return json_reply(dumps(self.engine.metadata.get_taskdef(params["name"])))

    def _delete_taskdef(self, request: Request, params: Params) -> bytes:
        self.engine.metadata.delete_taskdef(params["name"])
        return EMPTY_OK

    def _list_workflowdefs(self, request: Request, params: Params) -> bytes:
        return json_reply(dumps(self.engine.metadata.all_workflowdefs()))

    def _create_workflowdef(self, request: Request, params: Params) -> bytes:
        body = _json_body(request, "create(WorkflowDef, Boolean)")
        overwrite = _bool_param(_query(request), "overwrite", False) if self.behaviour.workflow_overwrite_param else False
        self.engine.metadata.create_workflowdef(body, overwrite, self.engine.now())
        return EMPTY_OK

    def _upsert_workflowdefs(self, request: Request, params: Params) -> bytes:
        body = _json_body(request, "update(List<WorkflowDef>)")
        return json_reply(dumps(self.engine.metadata.upsert_workflowdefs(body, self.engine.now())))

    def _get_workflowdef(self, request: Request, params: Params) -> bytes:
        version = _optional_int_param(_query(request), "version")
        return json_reply(dumps(self.engine.metadata.get_workflowdef(params["name"], version)))

    # ------------------------------------------------------------ workflows
    def _start_by_name(self, request: Request, params: Params) -> bytes:
        query = _query(request)
        version = _optional_int_param(query, "version")
        priority = _int_param(query, "priority", 0)
        validate_priority(priority, "startWorkflow.priority")
        body = _json_body(request, "startWorkflow(String, Integer, String, Integer, Map<String, Object>)")
        workflow_input = require_input(body)
        if not isinstance(workflow_input, dict):
            raise json_parse_error(
                "Cannot deserialize value of type `java.util.LinkedHashMap<java.lang.String,java.lang.Object>` from Array value"
            )
        name = params["name"]
        definition = self.engine.metadata.find_workflowdef(name, version)
        if definition is None:
            raise NotFound(f"No such workflow found by name: {name}, version: {java_text(version)}")
        workflow = self.engine.start_workflow(
            self.engine.plan_for(definition),
            workflow_input,
            _first(query, "correlationId"),
            priority,
        )
        return text_reply(workflow.workflow_id)

    def _start_request(self, request: Request, params: Params) -> bytes:
        body = _json_body(request, "startWorkflow(StartWorkflowRequest)")
        if not isinstance(body, dict):
            raise json_parse_error("Cannot deserialize value of type `StartWorkflowRequest` from non-object value")
        name = body.get("name")
        if not name:
            raise ValidationFailed([("startWorkflow.startWorkflowRequest.name", "Workflow name cannot be null or empty", None)])
        priority = body.get("priority")
        priority = 0 if priority is None else priority
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise json_parse_error("Cannot deserialize value of type `java.lang.Integer` (field `priority`)")
        validate_priority(priority, "startWorkflow.startWorkflowRequest.priority")
        workflow_input = require_input(body["input"]) if "input" in body else {}
        if not isinstance(workflow_input, dict):
            raise json_parse_error("Cannot deserialize value of type `java.util.Map` (field `input`)")
        task_to_domain = body.get("taskToDomain") or {}
        if not isinstance(task_to_domain, dict):
            raise json_parse_error("Cannot deserialize value of type `java.util.Map` (field `taskToDomain`)")
        version = body.get("version")
        inline = body.get("workflowDef")
        if inline is not None:
            plan = self.engine.plan_for(self.engine.metadata.validated_inline_workflowdef(inline), cache=False)
        else:
            definition = self.engine.metadata.find_workflowdef(name, version)
            if definition is None:
                raise NotFound(f"No such workflow defined. name={name}, version={java_text(version)}")
            plan = self.engine.plan_for(definition)
        workflow = self.engine.start_workflow(
            plan, workflow_input, body.get("correlationId"), priority, task_to_domain, body.get("createdBy")
        )
        return text_reply(workflow.workflow_id)

    def _get_workflow(self, request: Request, params: Params) -> bytes:
        include_tasks = _bool_param(_query(request), "includeTasks", True)
        workflow = self.engine.get_workflow(params["workflowId"])
        return json_reply(workflow.to_json(self.engine.now(), include_tasks))

    def _workflow_status(self, request: Request, params: Params) -> bytes:
        workflow = self.engine.get_workflow(params["workflowId"])
        summary: dict[str, Any] = {"workflowId": workflow.workflow_id, "status": workflow.status, "output": workflow.output}
        if workflow.correlation_id is not None:
            summary["correlationId"] = workflow.correlation_id
        return json_reply(dumps(summary))

    def _terminate(self, request: Request, params: Params) -> bytes:
        self.engine.terminate(params["workflowId"], _first(_query(request), "reason"))
        return EMPTY_OK

    def _remove(self, request: Request, params: Params) -> bytes:
        self.engine.remove(params["workflowId"])
        return EMPTY_OK

    def _retry(self, request: Request, params: Params) -> bytes:
        self.engine.retry(params["workflowId"])
        return NO_CONTENT

    def _restart(self, request: Request, params: Params) -> bytes:
        self.engine.restart(params["workflowId"], _bool_param(_query(request), "useLatestDefinitions", False))
        return NO_CONTENT

    def _pause(self, request: Request, params: Params) -> bytes:
        self.engine.pause(params["workflowId"])
        return EMPTY_OK

    def _resume(self, request: Request, params: Params) -> bytes:
        self.engine.resume(params["workflowId"])
        return EMPTY_OK

    # ------------------------------------------------------------ auth
    def _token(self, request: Request, params: Params) -> bytes:
        body = _json_body(request, "generateToken(GenerateTokenRequest)")
        if not isinstance(body, dict):
            raise json_parse_error("Cannot deserialize value of type `GenerateTokenRequest` from non-object value")
        assert self.auth is not None
        return json_reply(dumps({"token": self.auth.issue(body.get("keyId"), body.get("keySecret"))}))


class _UnknownPath(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _headers_only(reply: Reply) -> Reply:
    if isinstance(reply, Cut):
        return reply
    head, _, _ = reply.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n"


def _cut(reply: Reply, fault: FaultDecision) -> Cut:
    """The applied request's answer is lost whole (drop_after) or torn in the middle (tear_answer)."""
    if fault.tear_answer and isinstance(reply, bytes):
        return Cut(reply[: max(1, len(reply) // 2)])
    return DROP


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _poll_data_json(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}
