"""The installed `perago` console script end to end, in a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import perago
from cli_harness import run_console_script

M = "cli_task_modules"


def test_version(scratch_environment: Path) -> None:
    done = run_console_script("--version", cwd=scratch_environment)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{perago.__version__}\n", "")


def test_no_arguments_exits_2(scratch_environment: Path) -> None:
    done = run_console_script(cwd=scratch_environment)
    assert done.returncode == 2 and "Usage: perago" in done.stdout


def test_check_and_extract_with_dotenv(scratch_environment: Path, tmp_path: Path) -> None:
    (scratch_environment / ".env").write_text(
        "export PERAGO_WORKER_ID_PREFIX=prodGreet\n"
        "LAKECTL_SERVER_ENDPOINT_URL=http://lakefs:8000\n"
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIA\n"
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY='dotenv-secret-value'\n",
        encoding="utf-8",
    )
    done = run_console_script("check", f"{M}.free_ok", cwd=scratch_environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok: cli.greet",
        f"workspace_root: {tmp_path / 'workspaces'}",
        f"log_root: {tmp_path / 'logs'}",
        "worker_id_prefix: prodGreet",
        "conductor: not configured",
        "lakefs: configured",
        "metrics: not configured",
    ]
    extracted = run_console_script("extract", f"{M}.free_ok", "-o", "out/greet.json", cwd=scratch_environment)
    assert (extracted.returncode, extracted.stdout) == (0, "out/greet.json\n")
    taskdef = json.loads((scratch_environment / "out" / "greet.json").read_text(encoding="utf-8"))
    assert taskdef["name"] == "cli.greet" and taskdef["ownerEmail"] == "team@example.com"
    for output in (done.stdout + done.stderr, extracted.stdout + extracted.stderr):
        assert "dotenv-secret-value" not in output


def test_error_line_and_exit_1(scratch_environment: Path) -> None:
    done = run_console_script(
        "check", f"{M}.free_ok", cwd=scratch_environment, env={"LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA"}
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: LakeFS config is incomplete; missing LAKECTL_SERVER_ENDPOINT_URL, "
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY\n"
    )


def test_user_warning_in_standard_format(scratch_environment: Path) -> None:
    done = run_console_script("check", f"{M}.short_response_budget", cwd=scratch_environment)
    assert done.returncode == 0
    assert ": UserWarning: Task 'cli.shortresponse' has TaskControls.timeout.response_seconds=60" in done.stderr
    assert "warning: " not in done.stderr


def test_uncaught_exception_is_a_traceback_with_exit_1(scratch_environment: Path) -> None:
    done = run_console_script("check", f"{M}.runtime_error_at_import", cwd=scratch_environment)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: cannot reach the feature store" in done.stderr


def test_current_directory_is_not_on_the_import_path(scratch_environment: Path) -> None:
    (scratch_environment / "local_task.py").write_text((Path(__file__).parent / M / "free_ok.py").read_text())
    done = run_console_script("check", "local_task", cwd=scratch_environment)
    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr
