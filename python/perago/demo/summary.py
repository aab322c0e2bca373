"""The demo's closing table, computed from Conductor's own timestamps.

tasks/s is the number of tasks over the span from the first task's start to the last
task's end; latency is each workflow's end minus its start, so when workflows arrive
faster than the workers take them it includes the time spent waiting in Conductor's queue.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DemoSummary:
    submitted: int
    completed: int
    failed: int
    wrong_output: int
    tasks_per_second: float
    submitted_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.wrong_output == 0 and self.completed == self.submitted

    @classmethod
    def of(
        cls,
        workflows: Sequence[dict[str, Any]],
        submitted: int,
        expected_output: Callable[[int], Any],
        submitted_per_second: float,
    ) -> DemoSummary:
        """`workflows[i]` is the finished i-th submitted workflow; `expected_output(i)` its output."""
        completed = [index for index, workflow in enumerate(workflows) if workflow.get("status") == "COMPLETED"]
        wrong = sum(1 for index in completed if workflows[index].get("output") != expected_output(index))
        tasks = [task for workflow in workflows for task in workflow.get("tasks", ()) if task.get("endTime")]
        span_ms = max((task["endTime"] for task in tasks), default=0) - min(
            (task["startTime"] for task in tasks), default=0
        )
        latencies = sorted(
            workflow["endTime"] - workflow["startTime"] for workflow in workflows if workflow.get("endTime")
        )
        return cls(
            submitted=submitted,
            completed=len(completed),
            failed=len(workflows) - len(completed),
            wrong_output=wrong,
            tasks_per_second=len(tasks) * 1000 / span_ms if span_ms > 0 else 0.0,
            submitted_per_second=submitted_per_second,
            latency_p50_ms=percentile(latencies, 50),
            latency_p99_ms=percentile(latencies, 99),
        )

    def table(self) -> str:
        rows = [
            ("completed", f"{self.completed:,} / {self.submitted:,}"),
            ("failed", f"{self.failed:,}"),
            ("wrong output", f"{self.wrong_output:,}"),
            ("tasks/s", f"{self.tasks_per_second:,.0f}  (first task start to last task end)"),
            (
                "submitted/s",
                f"{self.submitted_per_second:,.0f}  (workflows started by the demo; tasks/s cannot exceed it)",
            ),
            ("latency p50", f"{self.latency_p50_ms:,.0f} ms  (workflow start to end, queueing included)"),
            ("latency p99", f"{self.latency_p99_ms:,.0f} ms"),
        ]
        return "\n".join(f"  {name:<14}{value}" for name, value in rows)


def percentile(sorted_values: Sequence[float], rank: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    index = max(0, math.ceil(rank / 100 * len(sorted_values)) - 1)
    return float(sorted_values[index])
