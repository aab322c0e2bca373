"""`python -m perago.spare MODULE_TARGET`: the process-mode warm spare executor.

The supervisor keeps one spare booted next to the executors so that a dead executor's
slot is refilled without paying for a fresh interpreter's imports. The spare does the
slot-independent part of an executor's boot (configuration, the task module), tells
the supervisor it is warm, and waits with SIGINT/SIGTERM still blocked. When promoted
it takes the slot's identity (worker id, slot, generation, process title) into its
environment, then runs exactly as `perago.executor` from the point where a cold one
has adopted its slot socket: log file, attempt runner, Ready. If the supervisor drains
instead, the wait ends and the spare exits 0. A boot error exits 1 with the traceback
on stderr, which the supervisor reports as it does for executors.

The task module is imported before the slot is known, so module-level code that reads
`PERAGO_WORKER_ID` or `PERAGO_SLOT` sees them unset in a spare (as it did in perago 0.6,
whose executors were forked from the supervisor after the import); the task body sees
the slot's values.
"""

from __future__ import annotations

import os
import sys

from perago import _core
from perago.executor import load_task, serve_slot


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m perago.spare MODULE_TARGET\n")
        return 2
    module_target = args[0]
    config, task = load_task(module_target)
    slot_env = _core.wait_for_promotion()
    if slot_env is None:
        return 0
    os.environ.update(slot_env)
    channel = _core.ExecutorChannel.from_env()
    return serve_slot(channel, module_target, config, task)


if __name__ == "__main__":
    sys.exit(main())
