"""One attempt, row by row of runtime.md §5.4: what Conductor receives for each outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from pydantic import BaseModel

from perago import (
    PostGuardrailViolation,
    PreGuardrailViolation,
    StaleAttemptError,
    TaskFailed,
    TaskTerminalError,
    WorkspaceSpec,
    task,
)
from perago.attempt import (
    NO_WORKSPACE_RUNTIME,
    Attempt,
    AttemptRunner,
    AttemptSnapshot,
    conductor_attempt_fence,
    new_execution_id,
)
from perago.models import WorkspaceInput


class Params(BaseModel):
    text: str
    count: int


class Output(BaseModel):
    echoed: str
    total: int


@task(name="test.echo", owner_email="team@example.com")
def echo(params: Params) -> Output:
    if params.text == "terminal":
        raise TaskTerminalError("input can never work")
    if params.text == "retry":
        raise TaskFailed("downstream busy")
    if params.text == "empty":
        raise ValueError("")
    if params.text == "key":
        return {}["missing"]
    if params.text == "long":
        raise RuntimeError("x" * 80)
    if params.text == "extra":
        return {"echoed": "a", "total": 1, "surprise": True}  # type: ignore[return-value]
    if params.text == "stale":
        raise StaleAttemptError("attempt t-1 is no longer current")
    return Output(echoed=params.text, total=params.count * 2)


class StrictParams(BaseModel):
    name: str


@task(name="test.strict", owner_email="team@example.com", strict_params=True)
def strict(params: StrictParams) -> Output:
    return Output(echoed=params.name, total=0)


@task(name="test.files", owner_email="team@example.com", workspace=WorkspaceSpec())
def files(workspace: Path, params: Params) -> Output:
    (workspace / "out.txt").write_text(params.text)
    return Output(echoed=params.text, total=params.count)


def conductor_task(input_data: Any, **overrides: Any) -> dict[str, Any]:
    task_json = {
        "taskId": "t-1",
        "workflowInstanceId": "wf-1",
        "retryCount": 0,
        "taskDefName": "test.echo",
        "referenceTaskName": "echo_ref",
        "seq": 1,
        "status": "IN_PROGRESS",
        "inputData": input_data,
        "responseTimeoutSeconds": 600,
    }
    task_json.update(overrides)
    return task_json


def runner(fn: Any = echo, **options: Any) -> AttemptRunner:
    options.setdefault("failure_reason_max_length", 500)
    return AttemptRunner(fn.__perago_task__, worker_id="echoBroker", **options)


@pytest.fixture
def records() -> list[dict[str, Any]]:
    captured: list[dict[str, Any]] = []
    sink = logger.add(lambda message: captured.append(message.record), level="DEBUG")
    yield captured
    logger.remove(sink)


def reason_of(input_data: Any, fn: Any = echo, **options: Any) -> tuple[str, str | None]:
    result = runner(fn, **options).run(conductor_task(input_data)).result
    assert result.output is None
    return result.status, result.reason_for_incompletion


def test_success_outputs_the_validated_result() -> None:
    finished = runner().run(conductor_task({"params": {"text": "hi", "count": "3"}, "other": 1}))
    assert finished.result.status == "COMPLETED"
    assert finished.result.output == {"result": {"echoed": "hi", "total": 6}}


def test_missing_params_fails_with_the_envelope_reason() -> None:
    assert reason_of({"workspace": {}}) == ("FAILED", "workspace-free task input must contain params")


def test_bad_params_name_the_field_but_never_the_value(records: list[dict[str, Any]]) -> None:
    status, reason = reason_of({"params": {"text": "ok", "count": "hunter2-secret"}})
    assert status == "FAILED"
    assert reason is not None and "count" in reason and "ValidationError" in reason
    assert "hunter2" not in reason
    assert all("hunter2" not in json.dumps(record["extra"], default=str) for record in records)
    assert all("hunter2" not in record["message"] for record in records)


def test_strict_params_reject_unknown_keys() -> None:
    status, reason = reason_of({"params": {"name": "a", "typo": 1}}, strict)
    assert status == "FAILED" and reason is not None and "typo" in reason and "extra_forbidden" in reason


def test_non_strict_params_ignore_unknown_keys() -> None:
    result = runner().run(conductor_task({"params": {"text": "a", "count": 1, "typo": 2}})).result
    assert result.status == "COMPLETED"


def test_terminal_error_is_terminal_with_the_authors_reason() -> None:
    assert reason_of({"params": {"text": "terminal", "count": 1}}) == (
        "FAILED_WITH_TERMINAL_ERROR",
        "input can never work",
    )


def test_task_failed_is_retryable_with_the_authors_reason() -> None:
    assert reason_of({"params": {"text": "retry", "count": 1}}) == ("FAILED", "downstream busy")


def test_other_exceptions_name_their_type() -> None:
    assert reason_of({"params": {"text": "empty", "count": 1}}) == ("FAILED", "ValueError")
    assert reason_of({"params": {"text": "key", "count": 1}}) == ("FAILED", "KeyError: 'missing'")


def test_perago_sentences_are_sent_verbatim() -> None:
    assert reason_of({"params": {"text": "stale", "count": 1}}) == ("FAILED", "attempt t-1 is no longer current")


def test_result_with_unknown_fields_fails() -> None:
    status, reason = reason_of({"params": {"text": "extra", "count": 1}})
    assert status == "FAILED" and reason is not None and "surprise" in reason


def test_long_reasons_are_truncated_and_the_cut_is_logged(records: list[dict[str, Any]]) -> None:
    status, reason = reason_of({"params": {"text": "long", "count": 1}}, failure_reason_max_length=20)
    assert (status, reason) == ("FAILED", "RuntimeError: xxxxxx")
    warning = next(record for record in records if record["message"] == "truncated task failure reason")
    assert warning["extra"]["original_length"] == len("RuntimeError: ") + 80
    assert warning["extra"]["max_length"] == 20


def test_failures_carry_a_traceback_in_the_task_result_logs() -> None:
    finished = runner().run(conductor_task({"params": {"text": "key", "count": 1}}))
    body = json.loads(finished.task_result_json("echoBroker@host"))
    assert body["status"] == "FAILED"
    assert body["workerId"] == "echoBroker@host"
    assert body["extendLease"] is False
    assert "outputData" not in body
    (entry,) = body["logs"]
    assert entry["taskId"] == "t-1"
    assert "Traceback (most recent call last)" in entry["log"] and "in echo" in entry["log"]


def test_completed_task_result_json_matches_the_wire_shape() -> None:
    finished = runner().run(conductor_task({"params": {"text": "a", "count": 2}}))
    assert json.loads(finished.task_result_json("echoBroker@host")) == {
        "workflowInstanceId": "wf-1",
        "taskId": "t-1",
        "workerId": "echoBroker@host",
        "status": "COMPLETED",
        "outputData": {"result": {"echoed": "a", "total": 4}},
        "extendLease": False,
    }


def test_bytes_in_bytes_out() -> None:
    task_json = json.dumps(conductor_task({"params": {"text": "a", "count": 2}})).encode()
    body = json.loads(runner().run_json(task_json, new_execution_id(), "w@h"))
    assert body["outputData"] == {"result": {"echoed": "a", "total": 4}}


def test_a_task_missing_a_required_field_fails_naming_it() -> None:
    task_json = conductor_task({"params": {"text": "a", "count": 2}})
    del task_json["retryCount"]
    result = runner().run(task_json).result
    assert (result.status, result.reason_for_incompletion) == (
        "FAILED",
        "Conductor task is missing required field retry_count",
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"retryCount": "two", "taskDefName": None}, "ValueError: invalid literal for int() with base 10: 'two'"),
        ({"taskId": None, "retryCount": "two"}, "Conductor task is missing required field task_id"),
        ({"seq": [1], "inputData": None}, "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'list'"),
    ],
)
def test_the_first_bad_field_in_snapshot_order_decides_the_reason(changes: dict[str, Any], reason: str) -> None:
    task_json = {key: value for key, value in {**conductor_task({"params": {}}), **changes}.items() if value is not None}
    assert runner().run(task_json).result.reason_for_incompletion == reason


def test_run_json_snapshots_a_polled_task_as_run_does(tmp_path: Path) -> None:
    """Everything a polled task carries beyond the snapshot's fields is skipped, not lost."""
    polled = conductor_task(
        {"workspace": WORKSPACE, "params": {"text": "a", "count": 1}},
        iteration=3,
        retriedTaskId="t-0",
        responseTimeoutSeconds=90,
        retryCount="1",
        workflowTask={"name": "files", "taskDefinition": {"name": "test.files", "retryCount": 3}},
        outputData={},
        pollCount=1,
    )
    from_json, from_dict = RecordingWorkspaceRuntime(tmp_path), RecordingWorkspaceRuntime(tmp_path)
    runner(files, workspace_runtime=from_json).run_json(json.dumps(polled).encode(), "e" * 32, "w@h")
    runner(files, workspace_runtime=from_dict).run(polled, "e" * 32)
    assert from_json.calls == from_dict.calls
    assert from_json.calls[0].snapshot == AttemptSnapshot(
        workflow_instance_id="wf-1",
        task_id="t-1",
        retry_count=1,
        task_def_name="test.echo",
        reference_task_name="echo_ref",
        seq=1,
        status="IN_PROGRESS",
        input_data={"workspace": WORKSPACE, "params": {"text": "a", "count": 1}},
        iteration=3,
        retried_task_id="t-0",
        response_timeout_seconds=90,
    )


def test_non_mapping_input_fails() -> None:
    result = runner().run(conductor_task(["not", "a", "mapping"])).result
    assert result.reason_for_incompletion == "Conductor task field input_data must be a mapping"


def test_snapshot_reads_the_optional_fields() -> None:
    snapshot = AttemptSnapshot.from_task(conductor_task({}, iteration=None, retriedTaskId="t-0", retryCount="2"))
    assert (snapshot.iteration, snapshot.retried_task_id, snapshot.retry_count) == (0, "t-0", 2)
    assert snapshot.response_timeout_seconds == 600


def test_execution_ids_are_fresh_hex() -> None:
    first, second = new_execution_id(), new_execution_id()
    assert first != second and len(first) == 32 and int(first, 16) >= 0


def test_every_attempt_logs_start_and_finish(records: list[dict[str, Any]]) -> None:
    runner().run(conductor_task({"params": {"text": "retry", "count": 1}}), execution_id="e" * 32)
    started = next(record for record in records if record["message"] == "task attempt started")
    finished = next(record for record in records if record["message"] == "task attempt finished")
    assert started["extra"]["task_id"] == "t-1" and started["extra"]["execution_id"] == "e" * 32
    assert finished["extra"]["status"] == "FAILED"
    assert (finished["extra"]["task_id"], finished["extra"]["execution_id"]) == ("t-1", "e" * 32)
    assert finished["extra"]["retry_count"] == 0 and finished["extra"]["task_name"] == started["extra"]["task_name"]
    assert finished["extra"]["reason"] == "downstream busy"
    assert finished["extra"]["duration_seconds"] >= 0
    assert "Traceback" in finished["extra"]["traceback"]


WORKSPACE = {"repository": "repo", "branch": "main", "refType": "commit", "ref": "c1"}


class RecordingWorkspaceRuntime:
    """Stands in for the LakeFS runtime: runs the body in a directory and can raise guardrails."""

    def __init__(self, tmp_path: Path, raise_after_body: Exception | None = None) -> None:
        self.tmp_path = tmp_path
        self.raise_after_body = raise_after_body
        self.calls: list[Attempt] = []

    def run_attempt(self, attempt: Attempt, workspace: WorkspaceInput, body: Any) -> dict[str, Any]:
        self.calls.append(attempt)
        result = body(self.tmp_path)
        if self.raise_after_body is not None:
            raise self.raise_after_body
        return {"workspace": workspace.published_output("c2").model_dump(mode="json"), "result": result}


def test_workspace_task_without_a_runtime_says_so() -> None:
    status, reason = reason_of({"workspace": WORKSPACE, "params": {"text": "a", "count": 1}}, files)
    assert (status, reason) == ("FAILED", NO_WORKSPACE_RUNTIME)


def test_workspace_task_runs_through_the_runtime(tmp_path: Path) -> None:
    runtime = RecordingWorkspaceRuntime(tmp_path)
    finished = runner(files, workspace_runtime=runtime).run(
        conductor_task({"workspace": WORKSPACE, "params": {"text": "a", "count": 1}}), execution_id="e" * 32
    )
    assert finished.result.output == {
        "workspace": {**WORKSPACE, "ref": "c2"},
        "result": {"echoed": "a", "total": 1},
    }
    assert (tmp_path / "out.txt").read_text() == "a"
    assert runtime.calls[0].execution_id == "e" * 32 and runtime.calls[0].worker_id == "echoBroker"


def test_workspace_params_are_validated_before_the_runtime_runs(tmp_path: Path) -> None:
    runtime = RecordingWorkspaceRuntime(tmp_path)
    status, reason = reason_of({"workspace": WORKSPACE, "params": {"text": "a"}}, files, workspace_runtime=runtime)
    assert status == "FAILED" and reason is not None and "count" in reason
    assert runtime.calls == []


def test_workspace_envelope_and_reference_are_checked() -> None:
    assert reason_of({"params": {}}, files) == ("FAILED", "workspace task input must contain workspace and params")
    status, reason = reason_of({"workspace": {**WORKSPACE, "refType": "branch"}, "params": {}}, files)
    assert status == "FAILED" and reason is not None and "refType" in reason


@pytest.mark.parametrize(
    ("violation", "status"),
    [
        (PreGuardrailViolation("pre guardrail require_file('a.txt') did not find a file"), "FAILED_WITH_TERMINAL_ERROR"),
        (PostGuardrailViolation("post guardrail require_file('b.txt') did not find a file"), "FAILED"),
    ],
)
def test_guardrail_violations_are_classified(tmp_path: Path, violation: Exception, status: str) -> None:
    runtime = RecordingWorkspaceRuntime(tmp_path, raise_after_body=violation)
    assert reason_of(
        {"workspace": WORKSPACE, "params": {"text": "a", "count": 1}}, files, workspace_runtime=runtime
    ) == (status, str(violation))


def test_the_fence_passes_a_current_attempt_and_names_what_changed_otherwise() -> None:
    attempt = Attempt(AttemptSnapshot.from_task(conductor_task({})), "e" * 32, "echoBroker")
    current = conductor_task({})
    conductor_attempt_fence(lambda task_id: current)(attempt)
    for change, text in [
        ({"status": "TIMED_OUT"}, "status is 'TIMED_OUT', not 'IN_PROGRESS'"),
        ({"retryCount": 1}, "retry count is 1, not 0"),
        ({"workflowInstanceId": "wf-2"}, "workflow is 'wf-2', not 'wf-1'"),
    ]:
        with pytest.raises(StaleAttemptError, match="attempt of task t-1 is no longer current") as stale:
            conductor_attempt_fence(lambda task_id, change=change: {**current, **change})(attempt)
        assert text in str(stale.value)


def test_task_json_that_is_not_an_object_still_yields_a_failed_result() -> None:
    for raw in (b"not json", b"[1, 2]"):
        body = json.loads(runner().run_json(raw, "e" * 32, "w@h"))
        assert (body["status"], body["reasonForIncompletion"], body["taskId"]) == (
            "FAILED",
            "Conductor task is not a JSON object",
            "",
        )
