"""`python -m perago.testing.lakefs`: run the emulator until interrupted.

Prints the `export LAKECTL_...=...` lines for a shell, then serves; SIGINT or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from typing import Optional, Sequence

from .emulator import DEFAULT_VERSION, LakeFSEmulator


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perago.testing.lakefs", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", default=None, help="objects and the saved graph (kept across restarts); default: a temporary directory")
    parser.add_argument("--access-key-id", default=None)
    parser.add_argument("--secret-access-key", default=None)
    parser.add_argument("--version", dest="server_version", default=DEFAULT_VERSION, help="version reported by GET /config")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator = LakeFSEmulator(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        access_key_id=args.access_key_id,
        secret_access_key=args.secret_access_key,
        version=args.server_version,
    )
    with emulator:
        for name, value in emulator.env().items():
            print(f"export {name}={shlex.quote(value)}")
        sys.stdout.flush()
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
