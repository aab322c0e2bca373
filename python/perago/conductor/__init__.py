"""perago's own Conductor client: polling, result delivery, leases, auth (runtime.md §7-§8)."""

from perago.conductor.client import ConductorClient, Delivery, client_from_config, parse_tasks
from perago.conductor.errors import (
    ConductorAuthError,
    ConductorError,
    ConductorRejected,
    ConductorTransportError,
    ConductorUnavailable,
)
from perago.conductor.identity import conductor_worker_id
from perago.conductor.lease import LeaseKeeper

__all__ = [
    "ConductorAuthError",
    "ConductorClient",
    "ConductorError",
    "ConductorRejected",
    "ConductorTransportError",
    "ConductorUnavailable",
    "Delivery",
    "LeaseKeeper",
    "client_from_config",
    "conductor_worker_id",
    "parse_tasks",
]
