"""HTTP layer: routing by lakeFS operation ID, auth, fault injection, streaming responses.

Server stack: the standard library's `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive,
one thread per client connection, Nagle disabled. That fits the load the runtime creates (a
bounded pool of keep-alive connections per worker process, each doing blocking transfers):
object bodies are moved with `socket.sendfile` (zero-copy, no GIL) on the way out and in 1 MiB
reads hashed by hashlib (GIL released) on the way in, so the Python work per request is the
header parse plus a dictionary update under one short lock. An asyncio server would save
threads but not CPU here, and would need an executor for the file and hashing work anyway.
"""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from . import api_objects as objects
from . import api_refs as refs
from .auth import BasicAuth
from .blobs import BlobStore
from .bodies import BodyReader
from .errors import ApiError, bad_request
from .faults import DROP, DROP_AFTER_APPLY, ERROR, FaultInjector
from .graph import Store
from .messages import Request, Response, json_response
from .model import Entry

API_PREFIX = "/api/v1"
_INLINE_FILE_BYTES = 16 * 1024  # smaller object bodies go out in the same send as the headers; larger
# ones by sendfile, since reading them into a fresh bytes object and joining it to the headers costs
# two copies and page faults per request
log = logging.getLogger("perago.testing.lakefs")


@dataclass
class App:
    """Everything a request handler may touch."""

    store: Store
    blobs: BlobStore
    auth: BasicAuth
    faults: FaultInjector
    version: str
    started_at: int

    def physical_address(self, entry: Entry) -> str:
        return f"local://{self.blobs.path(entry.address)}"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Callable[..., Response]
    public: bool = False


def _route(method: str, template: str, operation: str, handler: Callable[..., Response], public: bool = False) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, re.compile(regex), operation, handler, public)


R = "/repositories/{repository}"
B = R + "/branches/{branch}"
ROUTES = [
    # object I/O first: it is the hot path
    _route("GET", R + "/refs/{ref}/objects", "getObject", objects.get_object),
    _route("HEAD", R + "/refs/{ref}/objects", "headObject", objects.get_object),
    _route("GET", R + "/refs/{ref}/objects/ls", "listObjects", objects.list_objects),
    _route("GET", R + "/refs/{ref}/objects/stat", "statObject", objects.stat_object),
    _route("POST", B + "/objects", "uploadObject", objects.upload_object),
    _route("DELETE", B + "/objects", "deleteObject", objects.delete_object),
    _route("POST", B + "/objects/delete", "deleteObjects", objects.delete_objects),
    _route("POST", B + "/objects/copy", "copyObject", objects.copy_object),
    _route("GET", B + "/diff", "diffBranch", objects.diff_branch),
    _route("GET", R + "/refs/{left}/diff/{right}", "diffRefs", objects.diff_refs),
    _route("GET", "/config", "getConfig", refs.get_config),
    _route("GET", "/config/version", "getLakeFSVersion", refs.get_version),
    _route("GET", "/config/storage", "getStorageConfig", refs.get_storage_config),
    _route("GET", "/healthcheck", "healthCheck", refs.healthcheck, public=True),
    _route("GET", "/setup_lakefs", "getSetupState", refs.setup_state, public=True),
    _route("GET", "/user", "getCurrentUser", refs.current_user),
    _route("GET", "/repositories", "listRepositories", refs.list_repositories),
    _route("POST", "/repositories", "createRepository", refs.create_repository),
    _route("GET", R, "getRepository", refs.get_repository),
    _route("DELETE", R, "deleteRepository", refs.delete_repository),
    _route("GET", R + "/metadata", "getRepositoryMetadata", refs.get_repository_metadata),
    _route("POST", R + "/metadata", "setRepositoryMetadata", refs.set_repository_metadata),
    _route("DELETE", R + "/metadata", "deleteRepositoryMetadata", refs.delete_repository_metadata),
    _route("GET", R + "/branches", "listBranches", refs.list_branches),
    _route("POST", R + "/branches", "createBranch", refs.create_branch),
    _route("GET", B, "getBranch", refs.get_branch),
    _route("DELETE", B, "deleteBranch", refs.delete_branch),
    _route("PUT", B, "resetBranch", refs.reset_branch),
    _route("PUT", B + "/hard_reset", "hardResetBranch", refs.hard_reset_branch),
    _route("POST", B + "/commits", "commit", refs.commit),
    _route("POST", B + "/revert", "revertBranch", refs.revert_branch),
    _route("POST", B + "/cherry-pick", "cherryPick", refs.cherry_pick),
    _route("GET", R + "/commits/{commit_id}", "getCommit", refs.get_commit),
    _route("GET", R + "/refs/{ref}/commits", "logCommits", refs.log_commits),
    _route("POST", R + "/refs/{source_ref}/merge/{destination_branch}", "mergeIntoBranch", refs.merge_into_branch),
    _route("GET", R + "/refs/{source_ref}/merge/{destination_branch}", "findMergeBase", refs.find_merge_base),
    _route("GET", R + "/tags", "listTags", refs.list_tags),
    _route("POST", R + "/tags", "createTag", refs.create_tag),
    _route("GET", R + "/tags/{tag}", "getTag", refs.get_tag),
    _route("DELETE", R + "/tags/{tag}", "deleteTag", refs.delete_tag),
    _route("GET", R + "/settings/branch_protection", "getBranchProtectionRules", refs.get_protection),
    _route("PUT", R + "/settings/branch_protection", "setBranchProtectionRules", refs.set_protection),
    _route("GET", R + "/branch_protection", "getBranchProtectionRulesLegacy", refs.get_protection),
    _route("POST", R + "/branch_protection", "createBranchProtectionRule", refs.add_protection_rule),
    _route("DELETE", R + "/branch_protection", "deleteBranchProtectionRule", refs.delete_protection_rule),
]


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = False
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is None:
            continue
        if route.method == method:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
        allowed = True
    if allowed:
        raise ApiError(405, f"method {method} not allowed on {path}")
    raise ApiError(404, f"path not found: {API_PREFIX}{path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "lakeFS-emulator"
    # Requests too malformed to route (bad request line, oversized headers) still get lakeFS's envelope.
    error_message_format = '{"message": "%(code)d %(message)s"}'
    error_content_type = "application/json"
    server: "EmulatorHTTPServer"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _dispatch(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        response: Optional[Response] = None
        drop_after_apply = False
        try:
            body = self._body_reader(headers)
        except ApiError as error:
            self.close_connection = True
            self._send(json_response(error.status, error.body))
            return
        request = Request(self.command, parse_qs(split.query, keep_blank_values=True), headers, body)
        try:
            if not split.path.startswith(API_PREFIX + "/"):
                raise ApiError(404, f"path not found: {split.path} (the API lives under {API_PREFIX})")
            route, params = match_route(self.command, split.path[len(API_PREFIX):])
            if not route.public:
                request.user = app.auth.authenticate(headers.get("authorization"))
            decision = app.faults.decide(route.operation)
            if decision.latency_seconds:
                time.sleep(decision.latency_seconds)
            if decision.action is None:
                for callback in decision.callbacks:
                    callback(route.operation)
            if decision.action == DROP:
                self._drop()
                return
            if decision.action == ERROR:
                raise ApiError(decision.status, f"injected fault on {route.operation}")
            drop_after_apply = decision.action == DROP_AFTER_APPLY
            response = route.handler(app, request, **params)
        except ApiError as error:
            response = json_response(error.status, error.body)
        except Exception as error:  # a bug or unexpected input must not kill the server
            log.exception("emulator failure on %s %s", self.command, split.path)
            response = json_response(500, {"message": f"internal error: {type(error).__name__}: {error}"})
        if not body.finished:
            try:
                body.drain()
            except (ApiError, OSError):
                self.close_connection = True
        if drop_after_apply:
            self._drop()
            return
        self._send(response)

    def _body_reader(self, headers: dict[str, str]) -> BodyReader:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return BodyReader(self.rfile, None, chunked=True)
        raw = headers.get("content-length", "0").strip() or "0"
        if not raw.isdigit():
            raise bad_request(f"Content-Length: invalid value {raw!r}")
        return BodyReader(self.rfile, int(raw), chunked=False)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        """Write status, headers and (small) body in one send; large files follow via sendfile."""
        lines = [
            f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        no_body = response.status in (204, 304)
        payload = b"" if no_body or self.command == "HEAD" else response.body
        stream: Optional[tuple[Path, int, int]] = None
        if not no_body:
            length = response.file[2] if response.file is not None else len(response.body)
            lines.append(f"Content-Length: {length}")
            if response.file is not None and self.command != "HEAD" and length:
                path, offset, count = response.file
                if count <= _INLINE_FILE_BYTES:
                    with open(path, "rb") as source:
                        source.seek(offset)
                        payload = source.read(count)
                else:
                    stream = response.file
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.log_request(response.status)
        self.wfile.write(head + payload)
        if stream is not None:
            path, offset, count = stream
            with open(path, "rb") as source:
                self.connection.sendfile(source, offset, count)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a reverse DNS lookup); skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake idle keep-alive handler threads so `stop()` leaves no thread behind."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # client went away mid-request; nothing to report
        super().handle_error(request, client_address)  # type: ignore[arg-type]
