"""Record what perago 0.6.1's `load_runtime_config` does for each case in `CASES`.

Run with the upstream package (a venv outside this repository):

    .peers/perago061/bin/python tests/config/oracle/record_config_cases.py

It rewrites `config_cases.json` next to this file; `test_config_oracle.py` replays every
case against this implementation. Outcomes are `["ok", <config as JSON>]` or
`[<exception class>, <message>]`; the temp directory is written as `<tempdir>`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from perago.config import load_runtime_config

HERE = Path(__file__).resolve().parent
TARGET = "app.workers.features_build"
LAKEFS = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs:8000",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "s3cr3t",
}
METRICS = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel:4318/v1/metrics"}

# (module target, process environment, .env text or None)
CASES: list[tuple[str, dict[str, str], str | None]] = [
    (TARGET, {}, None),
    ("app.wörk", {}, None),
    ("x_1.y2", {}, None),
    ("...", {}, None),
    ("...", {"PERAGO_WORKER_ID_PREFIX": "explicit"}, None),
    (TARGET, {"PERAGO_WORKSPACE_ROOT": "", "PERAGO_LOG_ROOT": " rel/logs "}, None),
    (TARGET, {"PERAGO_WORKSPACE_ROOT": "replace-me"}, None),
    *[
        (TARGET, {"PERAGO_LOG_FILE_MAX_SIZE": value}, None)
        for value in ["100", "0MB", "0.0001KB", " 1 mb ", "1.5GB", "512KB", "01MB", "1.MB", "1TB", "1e3KB", "-1MB", "   "]
    ],
    *[(TARGET, {"PERAGO_LOG_RETENTION": value}, None) for value in ["0d", "05d", "1h", "7D", " 30d ", "7"]],
    *[(TARGET, {"PERAGO_WORKER_ID_PREFIX": value}, None) for value in ["", "  ", "a-b", " ab1 ", "wörk", "replace-me"]],
    *[(TARGET, {"PERAGO_EXECUTION_MODE": value}, None) for value in ["Thread ", "PROCESS", "proc", ""]],
    *[
        (TARGET, {name: value}, None)
        for name in ["PERAGO_WORKSPACE_GC_TTL", "PERAGO_WORKSPACE_GC_INTERVAL", "PERAGO_SHUTDOWN_FORCE_KILL_AFTER"]
        for value in ["0s", "1w", "1.5h", "10", "10M", "30S", "2d", "05m", " 1h "]
    ],
    *[(TARGET, {"PERAGO_FAILURE_REASON_MAX_LENGTH": value}, None) for value in ["-1", "0", "007", "1e3", " 42 "]],
    *[(TARGET, {"CONDUCTOR_SERVER_URL": value}, None) for value in ["replace-me", " replace-me ", "", " http://c/api "]],
    (TARGET, dict(LAKEFS), None),
    *[(TARGET, {name: "x"}, None) for name in LAKEFS],
    *[(TARGET, {name: value for name, value in LAKEFS.items() if name != skipped}, None) for skipped in LAKEFS],
    *[(TARGET, {**LAKEFS, name: "replace-me"}, None) for name in LAKEFS],
    (TARGET, {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "y"}, None),
    (TARGET, {"OTEL_EXPORTER_OTLP_ENDPOINT": "replace-me"}, None),
    (TARGET, {"OTEL_RESOURCE_ATTRIBUTES": "a", "OTEL_EXPORTER_OTLP_ENDPOINT": "b"}, None),
    (TARGET, {"PERAGO_INSTANCE_ID": "a b", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "x"}, None),
    (TARGET, {**METRICS, "PERAGO_INSTANCE_ID": "a b"}, None),
    (TARGET, {**METRICS, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none"}, None),
    (TARGET, {**METRICS, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1s"}, None),
    (TARGET, {**METRICS, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "0"}, None),
    (TARGET, {**METRICS, "OTEL_METRIC_EXPORT_INTERVAL": "x"}, None),
    (TARGET, {**METRICS, "OTEL_METRIC_EXPORT_INTERVAL": "0"}, None),
    (
        TARGET,
        {
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": " e ",
            "PERAGO_INSTANCE_ID": " a.b_c-1 ",
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "GZIP",
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "007",
            "OTEL_METRIC_EXPORT_INTERVAL": "5",
        },
        None,
    ),
    (TARGET, {"PERAGO_LOG_RETENTION": "x", "PERAGO_LOG_FILE_MAX_SIZE": "y"}, None),
    (TARGET, {"PERAGO_EXECUTION_MODE": "x", "PERAGO_WORKER_ID_PREFIX": "-"}, None),
    (TARGET, {"CONDUCTOR_SERVER_URL": "replace-me", "PERAGO_FAILURE_REASON_MAX_LENGTH": "0"}, None),
    (TARGET, {"LAKECTL_SERVER_ENDPOINT_URL": "x", "CONDUCTOR_SERVER_URL": "replace-me"}, None),
    (TARGET, {"OTEL_SERVICE_NAME": "x", "LAKECTL_SERVER_ENDPOINT_URL": "x"}, None),
    # .env: the syntax perago 0.6 and python-dotenv agree on, and precedence
    (
        TARGET,
        {},
        "# comment\n\n  export PERAGO_WORKER_ID_PREFIX = \"fromDotenv\"  \nPERAGO_LOG_ROOT='logs here'\n"
        "CONDUCTOR_SERVER_URL=http://c:8080/api?a=b#frag\nNOT A VARIABLE LINE WITHOUT EQUALS\n"
        "PERAGO_LOG_RETENTION=1d\nPERAGO_LOG_RETENTION=2d\n",
    ),
    (TARGET, {"PERAGO_WORKER_ID_PREFIX": "fromProcess", "CONDUCTOR_SERVER_URL": ""}, "PERAGO_WORKER_ID_PREFIX=fromDotenv\nCONDUCTOR_SERVER_URL=http://c/api\n"),
    (TARGET, {"LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "s"}, "LAKECTL_SERVER_ENDPOINT_URL=e\nLAKECTL_CREDENTIALS_ACCESS_KEY_ID=k\n"),
    (TARGET, {}, "PERAGO_LOG_RETENTION=\"0d\"\n"),
    (TARGET, {}, "LAKECTL_SERVER_ENDPOINT_URL=''\n"),
    (TARGET, {}, "CONDUCTOR_SERVER_URL=\"replace-me\"\n"),
]


def outcome(target: str, env: dict[str, str], dotenv: str | None, workdir: Path) -> list[object]:
    for stale in workdir.iterdir():
        stale.unlink()
    if dotenv is not None:
        (workdir / ".env").write_text(dotenv, encoding="utf-8")
    try:
        config = load_runtime_config(target, cwd=workdir, process_env=env, probe_roots=False)
    except Exception as exc:  # noqa: BLE001 - recording whatever happens
        return [type(exc).__name__, str(exc)]
    dumped = json.dumps(config.model_dump(mode="json")).replace(tempfile.gettempdir(), "<tempdir>")
    return ["ok", json.loads(dumped)]


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        recorded = [
            {"target": target, "env": env, "dotenv": dotenv, "outcome": outcome(target, env, dotenv, Path(scratch))}
            for target, env, dotenv in CASES
        ]
    (HERE / "config_cases.json").write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
