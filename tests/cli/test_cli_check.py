"""`perago check MODULE`: the seven summary lines, and every way it can fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from cli_harness import invoke

M = "cli_task_modules"
SECRETS = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs:8000",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "lakefs-secret-in-env",
    "CONDUCTOR_SERVER_URL": "http://conductor:8080/api",
    "CONDUCTOR_AUTH_KEY": "key-id",
    "CONDUCTOR_AUTH_SECRET": "auth-secret-in-env",
}


def summary(name: str, prefix: str, *, conductor: str = "not configured", lakefs: str = "not configured",
            metrics: str = "not configured") -> str:
    return (
        f"ok: {name}\n"
        f"workspace_root: {os.environ['PERAGO_WORKSPACE_ROOT']}\n"
        f"log_root: {os.environ['PERAGO_LOG_ROOT']}\n"
        f"worker_id_prefix: {prefix}\n"
        f"conductor: {conductor}\nlakefs: {lakefs}\nmetrics: {metrics}\n"
    )


def assert_error(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {message}\n"


def test_workspace_free_task() -> None:
    result = invoke("check", f"{M}.free_ok")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == summary("cli.greet", "clitaskmodulesfreeok")


def test_workspace_task_creates_both_roots() -> None:
    result = invoke("check", f"{M}.workspace_ok")
    assert result.stdout == summary("cli.features.build", "clitaskmodulesworkspaceok")
    assert Path(os.environ["PERAGO_WORKSPACE_ROOT"]).is_dir() and Path(os.environ["PERAGO_LOG_ROOT"]).is_dir()


def test_connections_reported_as_configured_without_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://otel:4318/v1/metrics")
    monkeypatch.setenv("PERAGO_WORKER_ID_PREFIX", "prodFeat")
    result = invoke("check", f"{M}.free_ok")
    assert result.stdout == summary(
        "cli.greet", "prodFeat", conductor="configured", lakefs="configured", metrics="configured"
    )
    for value in ("lakefs-secret-in-env", "auth-secret-in-env"):
        assert value not in result.output


def test_relative_roots_are_printed_as_configured(monkeypatch: pytest.MonkeyPatch, scratch_environment: Path) -> None:
    monkeypatch.setenv("PERAGO_WORKSPACE_ROOT", "state/ws")
    monkeypatch.setenv("PERAGO_LOG_ROOT", "")
    result = invoke("check", f"{M}.free_ok")
    lines = result.stdout.splitlines()
    assert lines[1:3] == ["workspace_root: state/ws", "log_root: ."]
    assert (scratch_environment / "state" / "ws").is_dir()


def test_dotenv_in_working_directory_is_used(scratch_environment: Path) -> None:
    (scratch_environment / ".env").write_text(
        "PERAGO_WORKER_ID_PREFIX=fromDotenv\nCONDUCTOR_SERVER_URL='http://c/api'\n", encoding="utf-8"
    )
    lines = invoke("check", f"{M}.free_ok").stdout.splitlines()
    assert lines[3:5] == ["worker_id_prefix: fromDotenv", "conductor: configured"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PERAGO_LOG_FILE_MAX_SIZE", "100", "PERAGO_LOG_FILE_MAX_SIZE must be a positive size such as '512KB', '100MB', or '1.5GB'"),
        ("PERAGO_LOG_RETENTION", "1h", "PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'"),
        ("PERAGO_WORKER_ID_PREFIX", "", "PERAGO_WORKER_ID_PREFIX must not be empty"),
        ("PERAGO_EXECUTION_MODE", "fiber", "PERAGO_EXECUTION_MODE must be either 'process' or 'thread'"),
        ("PERAGO_WORKSPACE_GC_TTL", "0s", "PERAGO_WORKSPACE_GC_TTL must be a positive duration such as '30s', '5m', '1h', or '24h'"),
        ("PERAGO_FAILURE_REASON_MAX_LENGTH", "0", "PERAGO_FAILURE_REASON_MAX_LENGTH must be greater than zero"),
        ("CONDUCTOR_SERVER_URL", "replace-me", "CONDUCTOR_SERVER_URL must be replaced with a real value"),
        ("LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY", "lakefs-secret-in-env",
         "LakeFS config is incomplete; missing LAKECTL_SERVER_ENDPOINT_URL, LAKECTL_CREDENTIALS_ACCESS_KEY_ID"),
        ("CONDUCTOR_AUTH_SECRET", "auth-secret-in-env", "Conductor auth config is incomplete; missing CONDUCTOR_AUTH_KEY"),
        ("OTEL_SERVICE_NAME", "svc", "OTEL_SERVICE_NAME is not supported by Perago metrics v1"),
    ],
)
def test_configuration_errors_come_before_the_module_is_imported(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    # The target does not even exist: configuration is checked first.
    assert_error(["check", "cli_task_modules.does_not_exist"], message)


def test_unwritable_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_LOG_ROOT", "/dev/null/logs")
    assert_error(["check", f"{M}.free_ok"], "/dev/null/logs is not writable: [Errno 20] Not a directory: '/dev/null/logs'")


def test_target_without_alphanumerics_needs_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_error(["check", "..."], "PERAGO_WORKER_ID_PREFIX must not be empty")
    monkeypatch.setenv("PERAGO_WORKER_ID_PREFIX", "explicit")
    result = invoke("check", "...")
    assert result.exit_code == 1 and result.stderr.startswith("error: module target must be")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("app/workers/x.py", "module target must be a Python import path, not a file path or object path"),
        (f"{M}.free_ok:greet", "module target must be a Python import path, not a file path or object path"),
        (f"{M}.no_task", f"{M}.no_task does not declare a Perago task"),
        (f"{M}.two_tasks", f"{M}.two_tasks declares more than one Perago task"),
        (f"{M}.async_task", "task function must be a synchronous function"),
        (f"{M}.bad_signature", "workspace task parameters must be named workspace and params"),
        (
            f"{M}.root_model",
            "Pydantic RootModel on task model(s) Items is not supported; "
            "Perago task contracts must use ordinary BaseModel object models.",
        ),
    ],
)
def test_task_definition_errors(target: str, message: str) -> None:
    for command in (["check", target], ["extract", target, "-o", "out.json"]):
        assert_error(command, message)
    assert not Path("out.json").exists()


def test_validation_error_at_import_keeps_pydantic_text() -> None:
    result = invoke("check", f"{M}.bad_prefix")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 1 validation error for WorkspaceSpec\nprefix\n  Value error, ")
    assert "must stay inside the repository" in result.stderr


def test_schema_generation_error() -> None:
    result = invoke("check", f"{M}.schema_error")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Cannot generate a JsonSchema for core_schema.CallableSchema")


def test_config_dict_warning_does_not_fail() -> None:
    result = invoke("check", f"{M}.config_dict")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: Pydantic ConfigDict on task model(s) Params, Inner is not part of the Perago task contract; "
        "Perago does not guarantee TaskDef or runtime behavior for ConfigDict-configured task models.\n"
    )
    assert result.stdout.startswith("ok: cli.configdict\n")


def test_read_only_budget_warning() -> None:
    result = invoke("check", f"{M}.read_only_budget")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: WorkspaceSpec(read_only=True) disables workspace publication; "
        "TaskControls.publish_budget is ignored.\n"
    )


def test_short_response_budget_is_a_python_warning_not_a_warning_line() -> None:
    with pytest.warns(UserWarning, match=r"response_seconds=60 which is shorter than"):
        result = invoke("check", f"{M}.short_response_budget")
    assert result.exit_code == 0
    assert "warning: " not in result.stderr
    assert result.stdout.startswith("ok: cli.shortresponse\n")


@pytest.mark.parametrize(
    ("target", "exception"),
    [
        (f"{M}.value_error_at_import", ValueError),
        (f"{M}.runtime_error_at_import", RuntimeError),
        ("cli_task_modules.does_not_exist", ModuleNotFoundError),
    ],
)
def test_other_exceptions_are_not_converted(target: str, exception: type[BaseException]) -> None:
    result = invoke("check", target)
    assert result.exit_code == 1
    assert type(result.exception) is exception
    assert not isinstance(result.exception, ValidationError)
    assert "error: " not in result.stderr


def test_unparsable_dotenv_is_an_error_line_without_the_value(scratch_environment: Path) -> None:
    (scratch_environment / ".env").write_text(
        "LAKECTL_SERVER_ENDPOINT_URL=http://lakefs\nLAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=\"half-quoted-secret\n",
        encoding="utf-8",
    )
    result = invoke("check", f"{M}.free_ok")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {scratch_environment / '.env'} line 2 is not a valid KEY=value line")
    assert "half-quoted-secret" not in result.output
