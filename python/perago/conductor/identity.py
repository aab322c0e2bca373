"""The worker id Conductor sees on polls and result updates.

Format: `<prefix>Broker@<host>` (e.g. `featuresBuildBroker@worker-7`). perago 0.6 sent a
bare `<prefix>Broker`, so two hosts running the same module reported the same id and
Conductor's poll data and task history could not tell them apart (runtime.md W22). The
`<prefix>Broker` part stays first so dashboards and greps keyed on it still match; the
host is the short host name (the text before the first dot), which is what operators
see in their inventory. Local names (log directories, `PERAGO_WORKER_ID`) keep the
bare `<prefix>Broker`.
"""

from __future__ import annotations

import re
import socket

from perago.worker_identity import broker_worker_id

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def conductor_worker_id(prefix: str, host: str | None = None) -> str:
    """The Conductor-visible identity: `<prefix>Broker@<short host>`."""
    name = host if host is not None else socket.gethostname()
    short = _UNSAFE.sub("-", name.split(".", 1)[0]).strip("-") or "unknown-host"
    return f"{broker_worker_id(prefix)}@{short}"
