"""Record what the perago 0.6.1 console script prints for each case in `CASES`.

    python tests/cli/oracle/record_cli_cases.py .peers/perago061/bin/perago

(any Python runs this; the argument is the upstream `perago` script). It rewrites
`cli_cases.json`; `test_cli_oracle.py` replays every case against this implementation.
Roots are relative (`ws`, `logs`) so the printed paths need no normalising; a traceback is
recorded as `"traceback": true` (its frames are implementation details).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI_TESTS_DIR = HERE.parent
M = "cli_task_modules"
MODULES = [
    "free_ok", "workspace_ok", "no_task", "two_tasks", "async_task", "bad_prefix", "root_model",
    "config_dict", "read_only_budget", "schema_error", "bad_signature", "value_error_at_import",
    "runtime_error_at_import", "does_not_exist",
]
LAKEFS = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs:8000",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "s3cr3t-value",
}

# (arguments, extra environment, .env text or None)
CASES: list[tuple[list[str], dict[str, str], str | None]] = [
    *[(["check", f"{M}.{module}"], {}, None) for module in MODULES],
    *[(["extract", f"{M}.{module}", "-o", "out/taskdef.json"], {}, None) for module in MODULES],
    (["check", "app/workers/x.py"], {}, None),
    (["check", f"{M}.free_ok:greet"], {}, None),
    (["check", "..."], {}, None),
    (["check", "..."], {"PERAGO_WORKER_ID_PREFIX": "explicit"}, None),
    (["check", f"{M}.free_ok"], {**LAKEFS, "CONDUCTOR_SERVER_URL": "http://c/api", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://o"}, None),
    (["check", f"{M}.free_ok"], {"PERAGO_WORKSPACE_ROOT": "", "PERAGO_LOG_ROOT": "deep/logs"}, None),
    (["check", f"{M}.free_ok"], {"PERAGO_LOG_ROOT": "/dev/null/logs"}, None),
    (["check", f"{M}.free_ok"], {}, "export PERAGO_WORKER_ID_PREFIX='fromDotenv'\nCONDUCTOR_SERVER_URL=http://c/api\n"),
    (["check", f"{M}.free_ok"], {"PERAGO_WORKER_ID_PREFIX": "fromProcess"}, "PERAGO_WORKER_ID_PREFIX=fromDotenv\n"),
    *[
        (["check", f"{M}.does_not_exist"], {name: value}, None)
        for name, value in [
            ("PERAGO_LOG_FILE_MAX_SIZE", "100"),
            ("PERAGO_LOG_RETENTION", "1h"),
            ("PERAGO_WORKER_ID_PREFIX", ""),
            ("PERAGO_EXECUTION_MODE", "fiber"),
            ("PERAGO_WORKSPACE_GC_TTL", "0s"),
            ("PERAGO_WORKSPACE_GC_INTERVAL", "1.5h"),
            ("PERAGO_SHUTDOWN_FORCE_KILL_AFTER", "10"),
            ("PERAGO_FAILURE_REASON_MAX_LENGTH", "0"),
            ("CONDUCTOR_SERVER_URL", "replace-me"),
            ("LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY", "s3cr3t-value"),
            ("OTEL_SERVICE_NAME", "svc"),
        ]
    ],
    (["extract", f"{M}.does_not_exist", "-o", "x.json"], {"PERAGO_LOG_RETENTION": "0d"}, None),
    *[
        (["extract", f"{M}.free_ok", "-o", output], {}, None)
        for output in ["taskdef.txt", "taskdef.JSON", ".json", "taskdef", "./a/../greet.json"]
    ],
    (["extract", f"{M}.free_ok", "--output", "long.json"], {}, None),
]


def run(script: str, args: list[str], extra_env: dict[str, str], dotenv: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as work:
        if dotenv is not None:
            Path(work, ".env").write_text(dotenv, encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": work,
            "PYTHONPATH": str(CLI_TESTS_DIR),
            "COLUMNS": "200",
            "PERAGO_WORKSPACE_ROOT": "ws",
            "PERAGO_LOG_ROOT": "logs",
            **extra_env,
        }
        done = subprocess.run([script, *args], cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False)
        written = sorted(str(p.relative_to(work)) for p in Path(work).rglob("*.json"))
        traceback = "Traceback" in done.stderr
        return {
            "returncode": done.returncode,
            "stdout": done.stdout,
            "stderr": None if traceback else done.stderr,
            "traceback": traceback,
            "files": {name: Path(work, name).read_text(encoding="utf-8") for name in written},
        }


def main() -> None:
    script = sys.argv[1] if len(sys.argv) > 1 else ".peers/perago061/bin/perago"
    recorded = [
        {"args": args, "env": env, "dotenv": dotenv, "result": run(script, args, env, dotenv)}
        for args, env, dotenv in CASES
    ]
    (HERE / "cli_cases.json").write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
