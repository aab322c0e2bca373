"""Seedable fault injection per endpoint: 5xx answers, dropped connections, latency, interference.

Rules name endpoints by lakeFS's OpenAPI operation ID (`mergeIntoBranch`, `uploadObject`,
`hardResetBranch`, ... or `*`). "Drop after apply" performs the request and then closes the
connection without answering, which is how a client meets the ambiguous outcome of a merge or
hard reset whose response was lost (spec §6.6 item 10). `before_apply` runs a callback just
before the request is applied, outside the emulator's lock, so a test can land a foreign commit
in the window between a client's head read and its merge. With no rules nothing is injected.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

ERROR = "error"
DROP = "drop"
DROP_AFTER_APPLY = "drop_after_apply"


@dataclass
class FaultRule:
    """One rule; the rates are shares of matching requests (0..1), rolled independently per request."""

    operation: str = "*"
    error_rate: float = 0.0
    error_status: int = 503
    drop_rate: float = 0.0
    drop_after_apply_rate: float = 0.0
    latency_seconds: float = 0.0
    before_apply: Optional[Callable[[str], None]] = None  # called with the operation ID; may call the emulator
    times: Optional[int] = None  # stop after injecting this many faults; None = forever

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "drop_after_apply_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultRule.{name} must be within [0, 1], got {value!r}")
        if self.error_rate + self.drop_rate + self.drop_after_apply_rate > 1.0:
            raise ValueError("FaultRule: error_rate + drop_rate + drop_after_apply_rate must not exceed 1")
        if not 500 <= self.error_status <= 599 and self.error_status not in (412, 429):
            raise ValueError(f"FaultRule.error_status must be 5xx, 412 or 429, got {self.error_status!r}")
        if self.latency_seconds < 0:
            raise ValueError(f"FaultRule.latency_seconds must be >= 0, got {self.latency_seconds!r}")


@dataclass(frozen=True)
class Decision:
    latency_seconds: float = 0.0
    action: Optional[str] = None
    status: int = 503
    callbacks: tuple[Callable[[str], None], ...] = ()


@dataclass(frozen=True)
class Injected:
    operation: str
    action: str  # "error" | "drop" | "drop_after_apply" | "latency" | "before_apply"


@dataclass
class FaultInjector:
    """The emulator's fault plan; thread-safe, deterministic for a given seed and request order."""

    seed: Optional[int] = None
    rules: list[FaultRule] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.injected.clear()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self.seed = seed
            self._rng = random.Random(seed)

    def decide(self, operation: str) -> Decision:
        if not self.rules:
            return Decision()
        latency = 0.0
        callbacks: list[Callable[[str], None]] = []
        with self._lock:
            for rule in self.rules:
                if rule.operation not in ("*", operation) or rule.times == 0:
                    continue
                roll = self._rng.random()
                action = None
                if roll < rule.error_rate:
                    action = ERROR
                elif roll < rule.error_rate + rule.drop_rate:
                    action = DROP
                elif roll < rule.error_rate + rule.drop_rate + rule.drop_after_apply_rate:
                    action = DROP_AFTER_APPLY
                if action is None and not rule.latency_seconds and rule.before_apply is None:
                    continue
                latency += rule.latency_seconds
                if rule.times is not None:
                    rule.times -= 1
                if action is not None:
                    self.injected.append(Injected(operation, action))
                    return Decision(latency, action, rule.error_status, tuple(callbacks))
                if rule.before_apply is not None:
                    callbacks.append(rule.before_apply)
                    self.injected.append(Injected(operation, "before_apply"))
                else:
                    self.injected.append(Injected(operation, "latency"))
        return Decision(latency, callbacks=tuple(callbacks))
