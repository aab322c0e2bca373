"""Which OSS Conductor release the emulator plays (spec conductor-api.md §0.3).

Users run 3.15 to 3.32 in the wild and a worker can observe the differences, so the
emulator takes a version string and derives each version-dependent behaviour from the
thresholds of the spec's table instead of offering unrelated switches.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SERVER_VERSION = "3.32.1"


def _parse(version: str) -> tuple[int, int, int]:
    parts = version.strip().split(".")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ValueError(f"server_version must look like '3.32.1', got {version!r}") from None
    if not 1 <= len(numbers) <= 3 or numbers[0] != 3:
        raise ValueError(f"server_version must be an OSS 3.x release such as '3.32.1', got {version!r}")
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0], numbers[1], numbers[2]


@dataclass(frozen=True)
class ServerBehaviour:
    """The version-dependent answers, resolved once from a version string."""

    version: str
    update_v2_exists: bool  # from 3.21.12
    update_v2_skips_poll_when_not_terminal: bool  # from 3.32.0
    unknown_task_is_404: bool  # from 3.21.20 (204 before)
    wrong_method_is_405: bool  # from 3.32.0 (500 before)
    canceled_result_accepted: bool  # from 3.32.0
    workflow_overwrite_param: bool  # from 3.32.0
    api_health_alias: bool  # from 3.32.0
    version_endpoint: bool  # from 3.22.0
    retry_delay_cap_and_jitter: bool  # maxRetryDelaySeconds, backoffJitterMs, totalTimeoutSeconds: 3.30.0
    release_postponed_on_free_slot: bool  # from 3.30.0
    spring6_messages: bool  # Spring 6 generation from about 3.16/3.17

    @classmethod
    def of(cls, version: str) -> ServerBehaviour:
        v = _parse(version)
        return cls(
            version=".".join(str(n) for n in v),
            update_v2_exists=v >= (3, 21, 12),
            update_v2_skips_poll_when_not_terminal=v >= (3, 32, 0),
            unknown_task_is_404=v >= (3, 21, 20),
            wrong_method_is_405=v >= (3, 32, 0),
            canceled_result_accepted=v >= (3, 32, 0),
            workflow_overwrite_param=v >= (3, 32, 0),
            api_health_alias=v >= (3, 32, 0),
            version_endpoint=v >= (3, 22, 0),
            retry_delay_cap_and_jitter=v >= (3, 30, 0),
            release_postponed_on_free_slot=v >= (3, 30, 0),
            spring6_messages=v >= (3, 17, 0),
        )
