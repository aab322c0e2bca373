"""The demo's verdict and table from finished workflows, and what it refuses to run without."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from perago.demo import DemoError
from perago.demo.run import expected_output, load_demo_task, runtime_environment
from perago.demo.summary import DemoSummary, percentile


def workflow(
    index: int, status: str = "COMPLETED", start: int = 1000, took: int = 10, output: Any = None
) -> dict[str, Any]:
    return {
        "status": status,
        "startTime": start,
        "endTime": start + took,
        "output": expected_output(index) if output is None else output,
        "tasks": [{"startTime": start + 1, "endTime": start + took - 1}],
    }


def test_all_completed_with_expected_output_is_ok() -> None:
    workflows = [workflow(index, start=1000 + index * 10, took=5 + index) for index in range(100)]
    summary = DemoSummary.of(workflows, 100, expected_output, 500.0)
    assert summary.ok
    assert (summary.completed, summary.failed, summary.wrong_output) == (100, 0, 0)
    assert summary.tasks_per_second == pytest.approx(100 * 1000 / (1000 + 99 * 10 + 103 - 1001))
    assert (summary.latency_p50_ms, summary.latency_p99_ms) == (54, 103)


def test_a_failed_workflow_or_a_wrong_output_is_not_ok_and_shows_in_the_table() -> None:
    workflows = [workflow(0), workflow(1, status="FAILED"), workflow(2, output={"result": {"text": "hello world 7"}})]
    summary = DemoSummary.of(workflows, 3, expected_output, 500.0)
    assert not summary.ok
    table = summary.table()
    assert "  completed     2 / 3" in table
    assert "  failed        1" in table
    assert "  wrong output  1" in table


def test_fewer_finished_than_submitted_is_not_ok() -> None:
    assert not DemoSummary.of([workflow(0)], 2, expected_output, 500.0).ok


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 101)), 99) == 99


def test_runtime_environment_drops_the_users_settings_and_adds_the_examples() -> None:
    user = {
        "PATH": "/usr/bin",
        "PYTHONPATH": "/mine",
        "CONDUCTOR_AUTH_KEY": "key",
        "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel",
        "PERAGO_EXECUTION_MODE": "process",
    }
    env = runtime_environment(
        user, conductor_url="http://127.0.0.1:1/api", scratch=Path("/s"), examples_dir=Path("/ex")
    )
    assert env == {
        "PATH": "/usr/bin",
        "PYTHONPATH": "/ex:/mine",
        "CONDUCTOR_SERVER_URL": "http://127.0.0.1:1/api",
        "PERAGO_WORKSPACE_ROOT": "/s/workspaces",
        "PERAGO_LOG_ROOT": "/s/logs",
    }


def test_without_a_source_checkout_the_demo_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=f"expected in {tmp_path}"):
        load_demo_task(tmp_path)
