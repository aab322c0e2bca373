"""Proving that a local root (workspace root, log root) is usable before anything runs.

Creating the directory and a throw-away file in it is the only honest test: permission
bits, read-only mounts, full disks and path components that are files all show up here,
with the operating system's own words, instead of in the middle of a task attempt.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from perago.errors import RuntimeConfigError

PROBE_DIRECTORY_PREFIX = ".perago-check-"
PROBE_FILE_NAME = "write-test"


def check_writable_root(path: Path) -> None:
    """Create `path` (with parents) and a `.perago-check-*/write-test` file in it, then
    remove both; any OS error becomes a `RuntimeConfigError` naming the path."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=PROBE_DIRECTORY_PREFIX, dir=path) as probe:
            probe_file = Path(probe) / PROBE_FILE_NAME
            probe_file.write_text("ok", encoding="utf-8")
            probe_file.unlink()
    except OSError as exc:
        raise RuntimeConfigError(f"{path} is not writable: {exc}") from exc
