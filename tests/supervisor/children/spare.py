"""A stand-in warm spare: waits for its promotion like `perago.spare`, then runs the
stand-in executor in the slot it was given. Steered by TEST_SPARE_MODE: `normal` |
`boot_error` (exit 1 before warm, with a traceback on stderr) | `slow_boot` (an hour
of "imports" before it is warm)."""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import journal
from perago import _core


def main() -> int:
    if os.environ.get("TEST_SPARE_MODE") == "boot_error":
        sys.stderr.write("Traceback (most recent call last):\n")
        sys.stderr.write("ImportError: cannot import name 'helper' from 'app'\n")
        return 1
    journal.record("spare_booted", title=os.environ["PERAGO_PROCESS_TITLE"])
    if os.environ.get("TEST_SPARE_MODE") == "slow_boot":
        time.sleep(3600)
    slot_env = _core.wait_for_promotion()
    if slot_env is None:
        journal.record("spare_stopped")
        return 0
    os.environ.update(slot_env)
    journal.record("spare_promoted", worker_id=slot_env["PERAGO_WORKER_ID"])
    import executor  # reads its slot identity from the environment at import

    return executor.main()


if __name__ == "__main__":
    sys.exit(main())
