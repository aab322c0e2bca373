"""`perago` itself: version, help, usage errors (exit status 2)."""

from __future__ import annotations

import perago
from cli_harness import invoke


def test_version_is_printed_and_exits_zero() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{perago.__version__}\n", "")


def test_version_is_eager_even_before_a_command() -> None:
    result = invoke("--version", "check", "no.such.module")
    assert (result.exit_code, result.stdout) == (0, f"{perago.__version__}\n")


def test_no_arguments_prints_help_and_exits_2() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "Usage: perago [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert "check" in result.stdout and "extract" in result.stdout


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "--version" in result.stdout
    assert result.stdout.index(" check ") < result.stdout.index(" extract ")


def test_usage_errors_exit_2() -> None:
    for args, complaint in [
        (["check"], "Missing argument 'module_target'"),
        (["extract"], "Missing argument 'module_target'"),
        (["extract", "cli_task_modules.free_ok"], "Missing option '--output' / '-o'"),
        (["nonsense"], "No such command 'nonsense'"),
        (["check", "--bogus", "x"], "No such option: --bogus"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert complaint in result.stderr, (args, result.stderr)
        assert result.stdout == ""
