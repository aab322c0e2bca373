"""Run one supervisor from a JSON settings file, as `perago start` would (test harness)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from perago.errors import RuntimeConfigError
from perago.supervisor import SupervisorSettings, report_outcome, supervise


def main() -> int:
    raw = json.loads(Path(sys.argv[1]).read_text())
    for key in (
        "gc_ttl",
        "gc_interval",
        "force_kill_after",
        "backoff_unit",
        "healthy_after",
    ):
        if raw.get(key) is not None:
            raw[key] = timedelta(seconds=raw[key])
    try:
        outcome = supervise(SupervisorSettings(**raw))
    except RuntimeConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return report_outcome(outcome)


if __name__ == "__main__":
    sys.exit(main())
