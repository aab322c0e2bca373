"""Type stub of the compiled Rust core; checked against the module by tests/test_core_stub.py."""

import os
from pathlib import Path
from types import TracebackType

__version__: str
RESTART_BACKOFF_SECONDS: list[int]
MAX_RESTART_BACKOFF_SECONDS: int
LOCK_FILE_NAME: str

def restart_backoff_seconds(restart_count: int) -> int: ...

class WorkspaceRootLock:
    @staticmethod
    def acquire(root: str | os.PathLike[str]) -> WorkspaceRootLock: ...
    @property
    def path(self) -> Path: ...
    @property
    def held(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> WorkspaceRootLock: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
