"""`LakeFSEmulator`: a lakeFS API server on loopback for tests, benchmarks and `perago dev`.

Runs in a background thread of the calling process. Object data lives content-addressed
under `data_dir`; repositories, branches and commits live in memory. With a given `data_dir`
the graph is saved there on stop and loaded on start, so a dev server survives restarts;
without one a temporary directory is used and removed on stop.
"""

from __future__ import annotations

import secrets
import shutil
import string
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Union

from .auth import BasicAuth
from .blobs import BlobStore
from .faults import FaultInjector
from . import persistence
from .graph import PreMergeHook, Store
from .server import API_PREFIX, App, EmulatorHTTPServer

DEFAULT_VERSION = "1.84.0"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


class LakeFSEmulator:
    """A lakeFS server speaking the API of spec/workspace.md §6 to the official clients.

    Use as a context manager (or call `start()`/`stop()`):

        with LakeFSEmulator() as lakefs:
            client = lakefs_sdk.LakeFSClient(lakefs_sdk.Configuration(
                host=lakefs.api_url, username=lakefs.access_key_id, password=lakefs.secret_access_key))
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Union[str, Path, None] = None,
        access_key_id: Optional[str] = None,
        secret_access_key: Optional[str] = None,
        user_id: str = "admin",
        version: str = DEFAULT_VERSION,
        fault_seed: Optional[int] = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.access_key_id = access_key_id or "AKIAPERAGO" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(10))
        self.secret_access_key = secret_access_key or secrets.token_urlsafe(30)
        self.user_id = user_id
        self.version = version
        self.faults = FaultInjector(seed=fault_seed)
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Optional[Path] = None
        self._store = Store()
        self._server: Optional[EmulatorHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "LakeFSEmulator":
        if self._server is not None:
            raise RuntimeError("LakeFSEmulator is already running")
        if self._given_data_dir is None and self.data_dir is not None:
            raise RuntimeError(
                "LakeFSEmulator cannot restart: its temporary data_dir was removed on stop (pass data_dir= to restart)"
            )
        if self._given_data_dir is not None:
            self._given_data_dir.mkdir(parents=True, exist_ok=True)
            self.data_dir = self._given_data_dir
            if self._store.empty:
                persistence.load(self._store, self.data_dir)
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="perago-lakefs-"))
        app = App(
            store=self._store,
            blobs=BlobStore(self.data_dir),
            auth=BasicAuth(self.access_key_id, self.secret_access_key, self.user_id),
            faults=self.faults,
            version=self.version,
            started_at=int(time.time()),
        )
        self._server = EmulatorHTTPServer((self.host, self.requested_port), app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="lakefs-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        if self._given_data_dir is not None:
            persistence.save(self._store, self._given_data_dir)
        if self._given_data_dir is None and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)  # a restart is refused from here on

    def __enter__(self) -> "LakeFSEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- what clients need

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LakeFSEmulator is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Endpoint as lakectl and `lakefs.Client(host=...)` take it; the API is under `/api/v1`."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Base URL for the generated `lakefs_sdk.Configuration(host=...)`."""
        return self.url + API_PREFIX

    def env(self) -> dict[str, str]:
        """The LAKECTL_* variables perago reads (spec/workspace.md §7)."""
        return {
            "LAKECTL_SERVER_ENDPOINT_URL": self.url,
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": self.access_key_id,
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    # ---------------------------------------------------------------- test hooks

    @property
    def pre_merge_hook(self) -> Optional[PreMergeHook]:
        return self._store.pre_merge_hook

    @pre_merge_hook.setter
    def pre_merge_hook(self, hook: Optional[PreMergeHook]) -> None:
        """Called inside the destination update with the new merge commit; a returned string
        rejects the merge with 412. It runs under the emulator's lock: never call the emulator from it."""
        self._store.pre_merge_hook = hook
