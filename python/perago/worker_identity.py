"""Worker ids: the prefix, the broker and executor-slot ids, and what children inherit.

One supervisor serves one task module. Its children are told who they are through exactly
two environment variables, `PERAGO_WORKER_ID_PREFIX` and `PERAGO_WORKER_ID`; the broker
(and the thread-mode runner) is `<prefix>Broker`, the Conductor-visible id, and executor
slot *i* is `<prefix>` + *i* zero-padded to four digits, stable across restarts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from perago.errors import RuntimeConfigError

WORKER_ID_PREFIX_VARIABLE = "PERAGO_WORKER_ID_PREFIX"
WORKER_ID_VARIABLE = "PERAGO_WORKER_ID"
BROKER_SUFFIX = "Broker"

_PREFIX = re.compile(r"[A-Za-z0-9]+")
_NOT_PREFIX_CHARACTER = re.compile(r"[^A-Za-z0-9]+")


def validate_worker_id_prefix(prefix: str) -> str:
    """Return `prefix` if it is non-empty ASCII letters and digits; never auto-corrects."""
    if not prefix:
        raise RuntimeConfigError(f"{WORKER_ID_PREFIX_VARIABLE} must not be empty")
    if _PREFIX.fullmatch(prefix) is None:
        raise RuntimeConfigError(
            f"{WORKER_ID_PREFIX_VARIABLE} must contain only ASCII letters and digits"
        )
    return prefix


def default_worker_id_prefix(module_target: str) -> str:
    """The module target without its non-alphanumerics: `app.workers.x_y` → `appworkersxy`."""
    return validate_worker_id_prefix(_NOT_PREFIX_CHARACTER.sub("", module_target))


def resolve_worker_id_prefix(module_target: str, env: Mapping[str, str]) -> str:
    """`PERAGO_WORKER_ID_PREFIX` (trimmed) when present — even empty — else the default."""
    configured = env.get(WORKER_ID_PREFIX_VARIABLE)
    if configured is None:
        return default_worker_id_prefix(module_target)
    return validate_worker_id_prefix(configured.strip())


def broker_worker_id(prefix: str) -> str:
    """The broker's and the thread runner's id, the one Conductor sees on polls and updates."""
    return f"{prefix}{BROKER_SUFFIX}"


def executor_worker_id(prefix: str, slot: int) -> str:
    """Executor slot `slot` (1-based): `prefix0001`, …, `prefix9999`, `prefix10000`."""
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 1:
        raise ValueError(f"executor slot must be an integer >= 1, not {slot!r}")
    return f"{prefix}{slot:04d}"


def child_environment(prefix: str, worker_id: str) -> dict[str, str]:
    """The two variables a supervisor sets for a child, on top of its own environment."""
    return {WORKER_ID_PREFIX_VARIABLE: prefix, WORKER_ID_VARIABLE: worker_id}


def resolve_worker_id(module_target: str, env: Mapping[str, str] | None = None) -> str:
    """This process's worker id: `PERAGO_WORKER_ID` from the real environment when set and
    non-empty, else `<default prefix>-pid-<pid>` for a process no supervisor started.

    The fallback ignores a configured prefix on purpose (perago 0.6 did the same): it marks
    a debugging run, not a slot.
    """
    source = os.environ if env is None else env
    configured = source.get(WORKER_ID_VARIABLE)
    if configured:
        return configured
    return f"{default_worker_id_prefix(module_target)}-pid-{os.getpid()}"
