"""Runtime configuration: what an operator sets through the environment and `.env`.

`load_runtime_config` is run by every CLI command before the task module is imported, so a
configuration mistake is reported first and in the operator's words: each error is a
`RuntimeConfigError` naming the variable at fault, and the first one (in the order of
`load_runtime_config`'s body, which is perago 0.6's) wins. Nothing here ever prints or
logs a secret: the LakeFS secret key and the Conductor auth secret are `SecretStr`s, shown
as `**********` in reprs and JSON dumps; `secret.get_secret_value()` is the only way in.

Beyond perago 0.6, `CONDUCTOR_AUTH_KEY` / `CONDUCTOR_AUTH_SECRET` are parsed here (0.6 left
them to the Conductor SDK, which saw only the real environment): they may come from `.env`
like everything else, and they are a group — both or neither.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr

from perago.dotenv_file import DOTENV_FILE_NAME, merge_environment, read_dotenv
from perago.errors import RuntimeConfigError
from perago.root_probe import check_writable_root
from perago.units import parse_duration, parse_positive_int, parse_retention_days, parse_size
from perago.worker_identity import resolve_worker_id_prefix

ExecutionMode = Literal["process", "thread"]

DEFAULT_LOG_FILE_MAX_SIZE = 100 * 1024 * 1024
DEFAULT_LOG_RETENTION = timedelta(days=30)
DEFAULT_EXECUTION_MODE: ExecutionMode = "process"
DEFAULT_WORKSPACE_GC_TTL = timedelta(hours=24)
DEFAULT_WORKSPACE_GC_INTERVAL = timedelta(hours=1)
DEFAULT_FAILURE_REASON_MAX_LENGTH = 500

PLACEHOLDER = "replace-me"
LAKEFS_VARIABLES = (
    "LAKECTL_SERVER_ENDPOINT_URL",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
)
CONDUCTOR_AUTH_VARIABLES = ("CONDUCTOR_AUTH_KEY", "CONDUCTOR_AUTH_SECRET")
UNSUPPORTED_OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_MILLISECONDS = "a positive integer number of milliseconds"
_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]+")

_T = TypeVar("_T", covariant=True)
_D = TypeVar("_D")


class _Parser(Protocol[_T]):
    def __call__(self, value: str, *, name: str) -> _T: ...


class ConductorConfig(BaseModel):
    """Where the Conductor server is, and the optional Orkes-style key/secret pair.

    `auth_key` and `auth_secret` are both set or both `None`; `auth_secret` is a
    `SecretStr`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    server_url: str
    auth_key: str | None = None
    auth_secret: SecretStr | None = None

    @property
    def auth_enabled(self) -> bool:
        return self.auth_key is not None and self.auth_secret is not None


class LakeFSConfig(BaseModel):
    """LakeFS host and credentials (access key id = username, secret = password)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_url: str
    access_key_id: str
    secret_access_key: SecretStr


class MetricsConfig(BaseModel):
    """OTLP/HTTP metrics export; present only when the metrics endpoint is configured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str
    instance_id: str | None = None
    compression: Literal["gzip"] | None = None
    timeout_millis: int | None = None
    export_interval_millis: int | None = None


class RuntimeConfig(BaseModel):
    """Everything local to one deployment: roots, log policy, identity, connections.

    None of it reaches a TaskDef or a Conductor payload. The supervisor hands this object
    to its children as is; `model_dump()` (Python mode) and pickling keep the secrets,
    JSON dumps mask them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_root: Path
    log_root: Path
    log_file_max_size: int
    log_retention: timedelta
    worker_id_prefix: str
    execution_mode: ExecutionMode = DEFAULT_EXECUTION_MODE
    workspace_gc_ttl: timedelta = DEFAULT_WORKSPACE_GC_TTL
    workspace_gc_interval: timedelta = DEFAULT_WORKSPACE_GC_INTERVAL
    shutdown_force_kill_after: timedelta | None = None
    failure_reason_max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH
    conductor: ConductorConfig | None = None
    lakefs: LakeFSConfig | None = None
    metrics: MetricsConfig | None = None


def load_runtime_config(
    module_target: str,
    *,
    cwd: Path | None = None,
    process_env: Mapping[str, str] | None = None,
    probe_roots: bool = True,
) -> RuntimeConfig:
    """Read `<cwd>/.env` and the process environment (which wins) into a `RuntimeConfig`.

    `process_env=None` reads `os.environ`; an explicit mapping replaces it (`{}` means no
    process variables). With `probe_roots` (every CLI command) the workspace root and then
    the log root are created and proven writable.
    """
    base = Path.cwd() if cwd is None else Path(cwd)
    current = os.environ if process_env is None else process_env
    env = merge_environment(read_dotenv(base / DOTENV_FILE_NAME), current)
    default_roots = Path(tempfile.gettempdir()) / "perago"
    config = RuntimeConfig(
        workspace_root=Path(env.get("PERAGO_WORKSPACE_ROOT", default_roots / "workspaces")),
        log_root=Path(env.get("PERAGO_LOG_ROOT", default_roots / "logs")),
        log_file_max_size=_optional(
            env, "PERAGO_LOG_FILE_MAX_SIZE", parse_size, DEFAULT_LOG_FILE_MAX_SIZE
        ),
        log_retention=_optional(
            env, "PERAGO_LOG_RETENTION", parse_retention_days, DEFAULT_LOG_RETENTION
        ),
        worker_id_prefix=resolve_worker_id_prefix(module_target, env),
        execution_mode=_optional(
            env, "PERAGO_EXECUTION_MODE", parse_execution_mode, DEFAULT_EXECUTION_MODE
        ),
        workspace_gc_ttl=_optional(
            env, "PERAGO_WORKSPACE_GC_TTL", parse_duration, DEFAULT_WORKSPACE_GC_TTL
        ),
        workspace_gc_interval=_optional(
            env, "PERAGO_WORKSPACE_GC_INTERVAL", parse_duration, DEFAULT_WORKSPACE_GC_INTERVAL
        ),
        shutdown_force_kill_after=_optional(
            env, "PERAGO_SHUTDOWN_FORCE_KILL_AFTER", parse_duration, None
        ),
        failure_reason_max_length=_optional(
            env,
            "PERAGO_FAILURE_REASON_MAX_LENGTH",
            parse_positive_int,
            DEFAULT_FAILURE_REASON_MAX_LENGTH,
        ),
        conductor=_conductor_config(env),
        lakefs=_lakefs_config(env),
        metrics=_metrics_config(env),
    )
    if probe_roots:
        check_writable_root(config.workspace_root)
        check_writable_root(config.log_root)
    return config


def parse_execution_mode(value: str, *, name: str = "PERAGO_EXECUTION_MODE") -> ExecutionMode:
    """`process` or `thread`, trimmed and case-insensitive."""
    mode = value.strip().lower()
    if mode == "process":
        return "process"
    if mode == "thread":
        return "thread"
    raise RuntimeConfigError(f"{name} must be either 'process' or 'thread'")


def _optional(
    env: Mapping[str, str], name: str, parse: _Parser[_T], default: _D
) -> _T | _D:
    """`parse(value, name=name)`, or `default` when the variable is missing or blank."""
    value = env.get(name)
    if value is None or not value.strip():
        return default
    return parse(value, name=name)


def _connection_value(env: Mapping[str, str], name: str) -> str | None:
    """A trimmed connection value; blank is unset and the template's `replace-me` an error."""
    value = env.get(name)
    if value is None or not value.strip():
        return None
    stripped = value.strip()
    if stripped == PLACEHOLDER:
        raise RuntimeConfigError(f"{name} must be replaced with a real value")
    return stripped


def _group(env: Mapping[str, str], names: tuple[str, ...], label: str) -> list[str] | None:
    """All values of a credential group, `None` if none is set; a partial group is an error
    listing the missing names in declaration order."""
    values = [_connection_value(env, name) for name in names]
    if all(value is None for value in values):
        return None
    missing = [name for name, value in zip(names, values) if value is None]
    if missing:
        raise RuntimeConfigError(f"{label} config is incomplete; missing {', '.join(missing)}")
    return [value for value in values if value is not None]


def _conductor_config(env: Mapping[str, str]) -> ConductorConfig | None:
    server_url = _connection_value(env, "CONDUCTOR_SERVER_URL")
    auth = _group(env, CONDUCTOR_AUTH_VARIABLES, "Conductor auth")
    if server_url is None:
        return None
    if auth is None:
        return ConductorConfig(server_url=server_url)
    key, secret = auth
    return ConductorConfig(server_url=server_url, auth_key=key, auth_secret=SecretStr(secret))


def _lakefs_config(env: Mapping[str, str]) -> LakeFSConfig | None:
    values = _group(env, LAKEFS_VARIABLES, "LakeFS")
    if values is None:
        return None
    endpoint_url, access_key_id, secret_access_key = values
    return LakeFSConfig(
        endpoint_url=endpoint_url,
        access_key_id=access_key_id,
        secret_access_key=SecretStr(secret_access_key),
    )


def _metrics_config(env: Mapping[str, str]) -> MetricsConfig | None:
    for name in UNSUPPORTED_OTEL_VARIABLES:
        if _connection_value(env, name) is not None:
            raise RuntimeConfigError(f"{name} is not supported by Perago metrics v1")
    endpoint = _connection_value(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    if endpoint is None:
        return None
    return MetricsConfig(
        endpoint=endpoint,
        instance_id=_optional(env, "PERAGO_INSTANCE_ID", _parse_instance_id, None),
        compression=_optional(
            env, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", _parse_compression, None
        ),
        timeout_millis=_optional(env, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", _parse_millis, None),
        export_interval_millis=_optional(env, "OTEL_METRIC_EXPORT_INTERVAL", _parse_millis, None),
    )


def _parse_instance_id(value: str, *, name: str) -> str:
    stripped = value.strip()
    if _INSTANCE_ID.fullmatch(stripped) is None:
        raise RuntimeConfigError(
            f"{name} must contain only ASCII letters, digits, dots, underscores, or hyphens"
        )
    return stripped


def _parse_compression(value: str, *, name: str) -> Literal["gzip"]:
    if value.strip().lower() != "gzip":
        raise RuntimeConfigError(f"{name} must be 'gzip'")
    return "gzip"


def _parse_millis(value: str, *, name: str) -> int:
    return parse_positive_int(value, name=name, what=_MILLISECONDS)
