"""Task controls: the retry, timeout and rate-limit fields of the Conductor TaskDef,
plus the publish budget that sizes LakeFS publication.

All models reject unknown fields and use Pydantic's lax coercion (`"3"` -> 3).
Cross-field rules raise `TaskDefinitionError` inside validation, so callers see a
Pydantic `ValidationError` ("Value error, ...") exactly as with perago 0.6.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perago.errors import TaskDefinitionError

RetryLogic = Literal["FIXED", "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF"]
TimeoutPolicyName = Literal["RETRY", "TIME_OUT_WF", "ALERT_ONLY"]

MAX_RETRY_COUNT = 10


class RetryPolicy(BaseModel):
    """Conductor retry fields (`retryCount`, `retryLogic`, `retryDelaySeconds`, ...).

    Which perago failures are retried at all is decided by the failure status,
    not here.
    """

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=3, ge=0, le=MAX_RETRY_COUNT)
    logic: RetryLogic = "FIXED"
    delay_seconds: int = Field(default=60, ge=0)
    max_delay_seconds: int = Field(default=0, ge=0)
    jitter_ms: int = Field(default=0, ge=0)


class TimeoutPolicy(BaseModel):
    """Conductor timeout fields; `response_seconds` always becomes `responseTimeoutSeconds`.

    No cross-field checks: Conductor's own rules apply when the TaskDef is registered.
    """

    model_config = ConfigDict(extra="forbid")

    policy: TimeoutPolicyName = "TIME_OUT_WF"
    seconds: int = Field(default=0, ge=0)
    response_seconds: int = Field(default=600, ge=0)
    poll_seconds: int = Field(default=0, ge=0)
    total_seconds: int = Field(default=0, ge=0)


class ExecutionLimits(BaseModel):
    """Optional concurrency and rate limits; `None` fields are left out of the TaskDef.

    The two rate-limit fields only mean something together, so both or neither
    must be set (`0` counts as set).
    """

    model_config = ConfigDict(extra="forbid")

    concurrent_exec_limit: int | None = Field(default=None, ge=0)
    rate_limit_frequency_in_seconds: int | None = Field(default=None, ge=0)
    rate_limit_per_frequency: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _rate_limit_pair(self) -> ExecutionLimits:
        if (self.rate_limit_frequency_in_seconds is None) != (self.rate_limit_per_frequency is None):
            raise TaskDefinitionError(
                "rate_limit_frequency_in_seconds and rate_limit_per_frequency must be configured together"
            )
        return self


class PublishBudget(BaseModel):
    """The time a writable workspace task's publication may take, piece by piece.

    Only `lakefs_merge_timeout_seconds` is used at runtime (as the LakeFS merge and
    branch-reset request timeout); the others are reserves summed into
    `response_timeout_seconds`, which TaskDef generation compares with
    `TimeoutPolicy.response_seconds` (a warning, never an override). It is a
    budget, not a proof of exactly-once publication.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    observed_merge_p99_seconds: int = Field(ge=0)
    safety_margin_seconds: int = Field(ge=0)
    lakefs_merge_timeout_seconds: int = Field(ge=1)
    conductor_completion_timeout_seconds: int = Field(ge=1)
    worker_shutdown_grace_seconds: int = Field(ge=1)
    heartbeat_interval_seconds: int = Field(ge=1)

    @model_validator(mode="after")
    def _merge_timeout_covers_p99(self) -> PublishBudget:
        if self.lakefs_merge_timeout_seconds < self.observed_merge_p99_seconds + self.safety_margin_seconds:
            raise TaskDefinitionError(
                "lakefs_merge_timeout_seconds must cover observed_merge_p99_seconds plus safety_margin_seconds"
            )
        return self

    @property
    def response_timeout_seconds(self) -> int:
        """Merge timeout + Conductor completion + shutdown grace + heartbeat interval."""
        return (
            self.lakefs_merge_timeout_seconds
            + self.conductor_completion_timeout_seconds
            + self.worker_shutdown_grace_seconds
            + self.heartbeat_interval_seconds
        )


class TaskControls(BaseModel):
    """Everything `@task(controls=...)` may tune; defaults are written to the TaskDef too."""

    model_config = ConfigDict(extra="forbid")

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: TimeoutPolicy = Field(default_factory=TimeoutPolicy)
    limits: ExecutionLimits = Field(default_factory=ExecutionLimits)
    publish_budget: PublishBudget | None = None

    @property
    def response_timeout_seconds(self) -> int:
        """`timeout.response_seconds`; a publish budget never changes it."""
        return self.timeout.response_seconds


__all__ = [
    "MAX_RETRY_COUNT",
    "ExecutionLimits",
    "PublishBudget",
    "RetryLogic",
    "RetryPolicy",
    "TaskControls",
    "TimeoutPolicy",
    "TimeoutPolicyName",
]
