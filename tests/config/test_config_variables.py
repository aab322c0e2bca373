"""Every variable of `load_runtime_config`: default, accepted forms, the error naming it,
the evaluation order, credential groups, placeholders, root probes and secret hygiene."""

from __future__ import annotations

import os
import pickle
import stat
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from perago import (
    ConductorConfig,
    LakeFSConfig,
    MetricsConfig,
    RuntimeConfig,
    RuntimeConfigError,
    load_runtime_config,
)

LAKEFS = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs:8000",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "lakefs-secret-value",
}
AUTH = {"CONDUCTOR_AUTH_KEY": "key-id", "CONDUCTOR_AUTH_SECRET": "conductor-secret-value"}


def load(env: dict[str, str], target: str = "app.workers.features_build", **kwargs: object) -> RuntimeConfig:
    kwargs.setdefault("cwd", Path("/nonexistent-perago-cwd"))
    kwargs.setdefault("probe_roots", False)
    return load_runtime_config(target, process_env=env, **kwargs)  # type: ignore[arg-type]


def error_of(env: dict[str, str], target: str = "app.workers.features_build") -> str:
    with pytest.raises(RuntimeConfigError) as caught:
        load(env, target)
    return str(caught.value)


def test_defaults() -> None:
    config = load({})
    temp = Path(tempfile.gettempdir()) / "perago"
    assert config == RuntimeConfig(
        workspace_root=temp / "workspaces",
        log_root=temp / "logs",
        log_file_max_size=104857600,
        log_retention=timedelta(days=30),
        worker_id_prefix="appworkersfeaturesbuild",
        execution_mode="process",
        workspace_gc_ttl=timedelta(hours=24),
        workspace_gc_interval=timedelta(hours=1),
        shutdown_force_kill_after=None,
        failure_reason_max_length=500,
        conductor=None,
        lakefs=None,
        metrics=None,
    )


def test_blank_optional_values_mean_default() -> None:
    blank = {
        name: "  "
        for name in [
            "PERAGO_LOG_FILE_MAX_SIZE",
            "PERAGO_LOG_RETENTION",
            "PERAGO_EXECUTION_MODE",
            "PERAGO_WORKSPACE_GC_TTL",
            "PERAGO_WORKSPACE_GC_INTERVAL",
            "PERAGO_SHUTDOWN_FORCE_KILL_AFTER",
            "PERAGO_FAILURE_REASON_MAX_LENGTH",
            "CONDUCTOR_SERVER_URL",
            *LAKEFS,
            *AUTH,
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_SERVICE_NAME",
        ]
    }
    assert load(blank) == load({})


def test_every_value_parsed() -> None:
    config = load(
        {
            "PERAGO_WORKSPACE_ROOT": " relative/ws ",
            "PERAGO_LOG_ROOT": "",
            "PERAGO_LOG_FILE_MAX_SIZE": "1.5gb",
            "PERAGO_LOG_RETENTION": "7D",
            "PERAGO_WORKER_ID_PREFIX": " prod42 ",
            "PERAGO_EXECUTION_MODE": " Thread ",
            "PERAGO_WORKSPACE_GC_TTL": "90m",
            "PERAGO_WORKSPACE_GC_INTERVAL": "30S",
            "PERAGO_SHUTDOWN_FORCE_KILL_AFTER": "2d",
            "PERAGO_FAILURE_REASON_MAX_LENGTH": "007",
            "CONDUCTOR_SERVER_URL": " http://conductor:8080/api ",
            **AUTH,
            **LAKEFS,
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": " http://otel:4318/v1/metrics ",
            "PERAGO_INSTANCE_ID": " host-1.a_b ",
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "GZIP",
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "0500",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
    )
    assert config.workspace_root == Path(" relative/ws ")  # verbatim, not trimmed
    assert config.log_root == Path(".")  # empty string is the current directory
    assert config.log_file_max_size == 1610612736
    assert config.log_retention == timedelta(days=7)
    assert config.worker_id_prefix == "prod42"
    assert config.execution_mode == "thread"
    assert config.workspace_gc_ttl == timedelta(minutes=90)
    assert config.workspace_gc_interval == timedelta(seconds=30)
    assert config.shutdown_force_kill_after == timedelta(days=2)
    assert config.failure_reason_max_length == 7
    assert config.conductor == ConductorConfig(
        server_url="http://conductor:8080/api", auth_key="key-id", auth_secret=SecretStr("conductor-secret-value")
    )
    assert config.conductor.auth_enabled
    assert config.lakefs == LakeFSConfig(
        endpoint_url="http://lakefs:8000",
        access_key_id="AKIAEXAMPLE",
        secret_access_key=SecretStr("lakefs-secret-value"),
    )
    assert config.metrics == MetricsConfig(
        endpoint="http://otel:4318/v1/metrics",
        instance_id="host-1.a_b",
        compression="gzip",
        timeout_millis=500,
        export_interval_millis=60000,
    )


SIZE = "PERAGO_LOG_FILE_MAX_SIZE must be a positive size such as '512KB', '100MB', or '1.5GB'"
DURATION = "must be a positive duration such as '30s', '5m', '1h', or '24h'"
MILLIS = "must be a positive integer number of milliseconds"
METRICS = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel:4318"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PERAGO_LOG_FILE_MAX_SIZE": "100"}, SIZE),
        ({"PERAGO_LOG_FILE_MAX_SIZE": "0MB"}, "PERAGO_LOG_FILE_MAX_SIZE must be greater than zero"),
        ({"PERAGO_LOG_RETENTION": "1h"}, "PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'"),
        ({"PERAGO_WORKER_ID_PREFIX": ""}, "PERAGO_WORKER_ID_PREFIX must not be empty"),
        ({"PERAGO_WORKER_ID_PREFIX": "   "}, "PERAGO_WORKER_ID_PREFIX must not be empty"),
        ({"PERAGO_WORKER_ID_PREFIX": "feat-build"}, "PERAGO_WORKER_ID_PREFIX must contain only ASCII letters and digits"),
        ({"PERAGO_WORKER_ID_PREFIX": "wörk"}, "PERAGO_WORKER_ID_PREFIX must contain only ASCII letters and digits"),
        ({"PERAGO_EXECUTION_MODE": "threads"}, "PERAGO_EXECUTION_MODE must be either 'process' or 'thread'"),
        ({"PERAGO_WORKSPACE_GC_TTL": "0s"}, f"PERAGO_WORKSPACE_GC_TTL {DURATION}"),
        ({"PERAGO_WORKSPACE_GC_INTERVAL": "1.5h"}, f"PERAGO_WORKSPACE_GC_INTERVAL {DURATION}"),
        ({"PERAGO_SHUTDOWN_FORCE_KILL_AFTER": "10"}, f"PERAGO_SHUTDOWN_FORCE_KILL_AFTER {DURATION}"),
        ({"PERAGO_FAILURE_REASON_MAX_LENGTH": "-1"}, "PERAGO_FAILURE_REASON_MAX_LENGTH must be a positive integer"),
        ({"PERAGO_FAILURE_REASON_MAX_LENGTH": "0"}, "PERAGO_FAILURE_REASON_MAX_LENGTH must be greater than zero"),
        ({"CONDUCTOR_SERVER_URL": " replace-me "}, "CONDUCTOR_SERVER_URL must be replaced with a real value"),
        ({"CONDUCTOR_AUTH_KEY": "replace-me"}, "CONDUCTOR_AUTH_KEY must be replaced with a real value"),
        ({"CONDUCTOR_AUTH_SECRET": "replace-me"}, "CONDUCTOR_AUTH_SECRET must be replaced with a real value"),
        (
            {"LAKECTL_SERVER_ENDPOINT_URL": "replace-me"},
            "LAKECTL_SERVER_ENDPOINT_URL must be replaced with a real value",
        ),
        (
            {"LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "replace-me"},
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID must be replaced with a real value",
        ),
        (
            {"LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "replace-me"},
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY must be replaced with a real value",
        ),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "replace-me"},
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT must be replaced with a real value",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "replace-me"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be replaced with a real value"),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "a=b"},
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS is not supported by Perago metrics v1",
        ),
        ({"OTEL_SERVICE_NAME": "svc"}, "OTEL_SERVICE_NAME is not supported by Perago metrics v1"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "a=b"}, "OTEL_RESOURCE_ATTRIBUTES is not supported by Perago metrics v1"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://o"}, "OTEL_EXPORTER_OTLP_ENDPOINT is not supported by Perago metrics v1"),
        (
            {**METRICS, "PERAGO_INSTANCE_ID": "host 1"},
            "PERAGO_INSTANCE_ID must contain only ASCII letters, digits, dots, underscores, or hyphens",
        ),
        (
            {**METRICS, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "deflate"},
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION must be 'gzip'",
        ),
        ({**METRICS, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1s"}, f"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT {MILLIS}"),
        (
            {**METRICS, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "0"},
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT must be greater than zero",
        ),
        ({**METRICS, "OTEL_METRIC_EXPORT_INTERVAL": "-5"}, f"OTEL_METRIC_EXPORT_INTERVAL {MILLIS}"),
        ({**METRICS, "OTEL_METRIC_EXPORT_INTERVAL": "00"}, "OTEL_METRIC_EXPORT_INTERVAL must be greater than zero"),
    ],
)
def test_each_error_names_its_variable(env: dict[str, str], message: str) -> None:
    assert error_of(env) == message


def test_metrics_details_are_ignored_without_an_endpoint() -> None:
    config = load(
        {
            "PERAGO_INSTANCE_ID": "not valid!",
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "zstd",
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "x",
            "OTEL_METRIC_EXPORT_INTERVAL": "y",
        }
    )
    assert config.metrics is None


def test_placeholder_rule_spares_perago_variables() -> None:
    config = load({"PERAGO_WORKSPACE_ROOT": "replace-me", "PERAGO_LOG_ROOT": "replace-me"})
    assert config.workspace_root == Path("replace-me")
    with pytest.raises(RuntimeConfigError, match="^PERAGO_WORKER_ID_PREFIX must contain only"):
        load({"PERAGO_WORKER_ID_PREFIX": "replace-me"})


# Variables in evaluation order, each with a value that is wrong.
ORDERED_MISTAKES = [
    ("PERAGO_LOG_FILE_MAX_SIZE", "big"),
    ("PERAGO_LOG_RETENTION", "forever"),
    ("PERAGO_WORKER_ID_PREFIX", "-"),
    ("PERAGO_EXECUTION_MODE", "fiber"),
    ("PERAGO_WORKSPACE_GC_TTL", "soon"),
    ("PERAGO_WORKSPACE_GC_INTERVAL", "often"),
    ("PERAGO_SHUTDOWN_FORCE_KILL_AFTER", "never"),
    ("PERAGO_FAILURE_REASON_MAX_LENGTH", "long"),
    ("CONDUCTOR_SERVER_URL", "replace-me"),
    ("CONDUCTOR_AUTH_KEY", "replace-me"),
    ("LAKECTL_SERVER_ENDPOINT_URL", "replace-me"),
    ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x"),
    ("OTEL_SERVICE_NAME", "x"),
    ("OTEL_RESOURCE_ATTRIBUTES", "x"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "x"),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "replace-me"),
]


@pytest.mark.parametrize("first", range(len(ORDERED_MISTAKES)))
def test_first_error_in_evaluation_order_wins(first: int) -> None:
    env = dict(ORDERED_MISTAKES[first:])
    assert error_of(env).startswith(ORDERED_MISTAKES[first][0])


def test_metrics_sub_values_in_order() -> None:
    env = {
        **METRICS,
        "PERAGO_INSTANCE_ID": "a b",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "x",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "x",
        "OTEL_METRIC_EXPORT_INTERVAL": "x",
    }
    for name in list(env)[1:]:
        assert error_of(env).startswith(name)
        del env[name]


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        (["LAKECTL_SERVER_ENDPOINT_URL"], "LAKECTL_CREDENTIALS_ACCESS_KEY_ID, LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"),
        (["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"], "LAKECTL_SERVER_ENDPOINT_URL, LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"),
        (["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"], "LAKECTL_SERVER_ENDPOINT_URL, LAKECTL_CREDENTIALS_ACCESS_KEY_ID"),
        (
            ["LAKECTL_SERVER_ENDPOINT_URL", "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
        ),
        (
            ["LAKECTL_SERVER_ENDPOINT_URL", "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID",
        ),
        (["LAKECTL_CREDENTIALS_ACCESS_KEY_ID", "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"], "LAKECTL_SERVER_ENDPOINT_URL"),
    ],
)
def test_partial_lakefs_group_lists_missing_names_in_order(present: list[str], missing: str) -> None:
    env = {name: LAKEFS[name] for name in present}
    env.update({name: " " for name in LAKEFS if name not in present})  # blank counts as missing
    assert error_of(env) == f"LakeFS config is incomplete; missing {missing}"


@pytest.mark.parametrize("present", list(AUTH))
def test_partial_conductor_auth_group_is_refused(present: str) -> None:
    missing = next(name for name in AUTH if name != present)
    env = {"CONDUCTOR_SERVER_URL": "http://c/api", present: AUTH[present]}
    assert error_of(env) == f"Conductor auth config is incomplete; missing {missing}"
    # also without a server URL: a half-configured pair is a mistake on every command
    del env["CONDUCTOR_SERVER_URL"]
    assert error_of(env) == f"Conductor auth config is incomplete; missing {missing}"


def test_conductor_without_auth_and_auth_without_conductor() -> None:
    config = load({"CONDUCTOR_SERVER_URL": "http://c/api"})
    assert config.conductor == ConductorConfig(server_url="http://c/api")
    assert not config.conductor.auth_enabled
    assert load(AUTH).conductor is None


def test_auth_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "CONDUCTOR_SERVER_URL=http://c/api\nCONDUCTOR_AUTH_KEY=k\nCONDUCTOR_AUTH_SECRET=s\n", encoding="utf-8"
    )
    conductor = load({}, cwd=tmp_path).conductor
    assert conductor is not None and conductor.auth_key == "k"
    assert conductor.auth_secret is not None and conductor.auth_secret.get_secret_value() == "s"


@pytest.mark.parametrize(
    ("target", "prefix"),
    [
        ("app.workers.features_build", "appworkersfeaturesbuild"),
        ("app.wörk", "appwrk"),
        ("x_1.y2", "x1y2"),
    ],
)
def test_prefix_defaults_to_target_alphanumerics(target: str, prefix: str) -> None:
    assert load({}, target).worker_id_prefix == prefix


@pytest.mark.parametrize("target", ["...", "_", "ö.ü"])
def test_target_without_alphanumerics_needs_an_explicit_prefix(target: str) -> None:
    assert error_of({}, target) == "PERAGO_WORKER_ID_PREFIX must not be empty"
    assert load({"PERAGO_WORKER_ID_PREFIX": "explicit"}, target).worker_id_prefix == "explicit"


def test_models_are_frozen_and_closed() -> None:
    config = load({})
    with pytest.raises(ValidationError):
        config.worker_id_prefix = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        RuntimeConfig(**config.model_dump(), surprise=1)
    with pytest.raises(ValidationError, match="extra"):
        LakeFSConfig(endpoint_url="e", access_key_id="k", secret_access_key="s", region="x")  # type: ignore[call-arg]


def test_secrets_never_show_in_repr_str_or_json_but_survive_handover() -> None:
    config = load({"CONDUCTOR_SERVER_URL": "http://c/api", **AUTH, **LAKEFS})
    for text in (repr(config), str(config), config.model_dump_json(), repr(config.lakefs), repr(config.conductor)):
        assert "lakefs-secret-value" not in text
        assert "conductor-secret-value" not in text
    for copy in (pickle.loads(pickle.dumps(config)), RuntimeConfig.model_validate(config.model_dump())):
        assert copy == config
        assert copy.lakefs is not None and copy.lakefs.secret_access_key.get_secret_value() == "lakefs-secret-value"


def test_roots_are_probed_workspace_then_log(tmp_path: Path) -> None:
    workspace_root = tmp_path / "new" / "workspaces"
    log_root = tmp_path / "new" / "logs"
    load({"PERAGO_WORKSPACE_ROOT": str(workspace_root), "PERAGO_LOG_ROOT": str(log_root)}, probe_roots=True)
    assert workspace_root.is_dir() and log_root.is_dir()
    assert list(workspace_root.iterdir()) == [] and list(log_root.iterdir()) == []  # probe cleaned up
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(RuntimeConfigError) as caught:
        load({"PERAGO_WORKSPACE_ROOT": str(blocker), "PERAGO_LOG_ROOT": "/dev/null/x"}, probe_roots=True)
    assert str(caught.value).startswith(f"{blocker} is not writable: [Errno 17] File exists")
    with pytest.raises(RuntimeConfigError) as caught:
        load({"PERAGO_WORKSPACE_ROOT": str(workspace_root), "PERAGO_LOG_ROOT": "/dev/null/x"}, probe_roots=True)
    assert str(caught.value) == "/dev/null/x is not writable: [Errno 20] Not a directory: '/dev/null/x'"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(RuntimeConfigError, match=rf"^{root} is not writable: \[Errno 13\] Permission denied"):
            load({"PERAGO_WORKSPACE_ROOT": str(root)}, probe_roots=True)
    finally:
        root.chmod(stat.S_IRWXU)


def test_probes_skipped_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "not-created"
    load({"PERAGO_WORKSPACE_ROOT": str(root)}, probe_roots=False)
    assert not root.exists()
