"""Fault injection for reliability tests (spec conductor-api.md §9). Off by default.

A `FaultPlan` holds rules keyed by endpoint name (see `ENDPOINTS`, or "*" for all). For
each request the first matching rule draws from one seeded random generator, so a run
with the same seed and the same request order injects the same faults.

Kinds of fault, each a probability per request:
- `error_rate`: answer `error_status` (default 503) with a retryable error body; the
  request is NOT applied.
- `drop_before_rate`: close the connection without answering; NOT applied.
- `drop_after_rate`: apply the request, then close without answering — the nasty case
  where an update took effect but the worker never heard so.
- `tear_answer_rate`: apply the request, write the first half of the answer, then reset
  the connection (a response cut mid-body).
- `expired_token_rate`: answer 401 `EXPIRED_TOKEN` (only meaningful with token auth).
- `redeliver_rate` (poll endpoints only): right after handing a task out, put it back in
  its queue as an IN_PROGRESS update with `callbackAfterSeconds: 0` would, so another
  poll can receive the same task id (duplicate delivery).
- `latency_seconds` (min, max): delay the answer by a uniform random time (real time).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field

ENDPOINTS = (
    "poll",
    "batch_poll",
    "update",
    "update_v2",
    "update_by_ref",
    "get_task",
    "task_log",
    "queue",
    "taskdefs",
    "workflowdefs",
    "start_workflow",
    "get_workflow",
    "workflow_control",
    "health",
    "token",
    "version",
)


@dataclass
class FaultRule:
    """Faults for one endpoint name (or "*")."""

    endpoint: str = "*"
    error_rate: float = 0.0
    error_status: int = 503
    drop_before_rate: float = 0.0
    drop_after_rate: float = 0.0
    tear_answer_rate: float = 0.0
    expired_token_rate: float = 0.0
    redeliver_rate: float = 0.0
    latency_seconds: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(f"FaultRule.endpoint must be '*' or one of {ENDPOINTS}, got {self.endpoint!r}")
        for name in (
            "error_rate",
            "drop_before_rate",
            "drop_after_rate",
            "tear_answer_rate",
            "expired_token_rate",
            "redeliver_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultRule.{name} must be between 0 and 1, got {value}")
        if not 500 <= self.error_status <= 599:
            raise ValueError(f"FaultRule.error_status must be a 5xx status, got {self.error_status}")
        low, high = self.latency_seconds
        if low < 0 or high < low:
            raise ValueError(f"FaultRule.latency_seconds must be (min, max) with 0 <= min <= max, got {self.latency_seconds}")
        self.latency_seconds = (float(low), float(high))


@dataclass
class FaultDecision:
    """What to do to one request."""

    error_status: int | None = None
    drop_before: bool = False
    drop_after: bool = False
    tear_answer: bool = False
    expired_token: bool = False
    redeliver: bool = False
    latency: float = 0.0


NO_FAULT = FaultDecision()


@dataclass
class FaultPlan:
    """Rules plus the seed of the generator that draws from them."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def rule_for(self, endpoint: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.endpoint == endpoint or rule.endpoint == "*":
                return rule
        return None

    def decide(self, endpoint: str) -> FaultDecision:
        rule = self.rule_for(endpoint)
        if rule is None:
            return NO_FAULT
        draw = self._random.random
        decision = FaultDecision()
        low, high = rule.latency_seconds
        if high > 0:
            decision.latency = self._random.uniform(low, high)
        if rule.error_rate and draw() < rule.error_rate:
            decision.error_status = rule.error_status
        elif rule.drop_before_rate and draw() < rule.drop_before_rate:
            decision.drop_before = True
        elif rule.expired_token_rate and draw() < rule.expired_token_rate:
            decision.expired_token = True
        elif rule.drop_after_rate and draw() < rule.drop_after_rate:
            decision.drop_after = True
        elif rule.tear_answer_rate and draw() < rule.tear_answer_rate:
            decision.tear_answer = True
        if rule.redeliver_rate and draw() < rule.redeliver_rate:
            decision.redeliver = True
        return decision

    def to_json(self) -> str:
        return json.dumps({"rules": [asdict(rule) for rule in self.rules], "seed": self.seed})

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        data = json.loads(text)
        rules = [FaultRule(**{**rule, "latency_seconds": tuple(rule["latency_seconds"])}) for rule in data["rules"]]
        return cls(rules=rules, seed=data["seed"])
