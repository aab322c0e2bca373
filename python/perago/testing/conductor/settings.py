"""Knobs of the emulated server, with OSS defaults (spec conductor-api.md §9).

A plain dataclass so the same settings can be handed to an emulator running in another
process (`to_json` / `from_json`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from perago.testing.conductor.versions import DEFAULT_SERVER_VERSION, ServerBehaviour


@dataclass
class EmulatorSettings:
    """How the emulated Conductor behaves.

    server_version: OSS release to play (see versions.py), default the current 3.32 line.
    update_v2_status: answer `POST /api/tasks/update-v2` with this status (404 or 405) as a
        gateway without that route would, to exercise a client's fallback to v1.
    auth_keys: Orkes-style token auth: `{keyId: keySecret}`; None (default) = OSS, no auth.
    token_ttl_seconds: lifetime of issued tokens on the emulator clock.
    rate_limits: enforce `rateLimitPerFrequency` (Redis backends do; SQL backends do not).
    """

    server_version: str = DEFAULT_SERVER_VERSION
    update_v2_status: int | None = None
    auth_keys: dict[str, str] | None = None
    token_ttl_seconds: int = 3600
    long_poll_cap_ms: int = 5000
    postpone_seconds: int = 60
    active_worker_window_seconds: int = 10
    task_log_limit: int = 10
    rate_limits: bool = False
    owner_email_mandatory: bool = False
    tick_seconds: float = 0.05

    def __post_init__(self) -> None:
        ServerBehaviour.of(self.server_version)  # fail early on a bad version string
        if self.update_v2_status not in (None, 404, 405, 501):
            raise ValueError(f"update_v2_status must be None, 404, 405 or 501, got {self.update_v2_status!r}")

    @property
    def behaviour(self) -> ServerBehaviour:
        return ServerBehaviour.of(self.server_version)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EmulatorSettings:
        return cls(**json.loads(text))
