"""`.env` in the working directory: syntax, precedence under the process environment, no export."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perago import RuntimeConfigError, load_runtime_config
from perago.dotenv_file import merge_environment, read_dotenv


def write_env(directory: Path, text: str) -> Path:
    path = directory / ".env"
    path.write_text(text, encoding="utf-8")
    return path


def test_cases_shared_with_perago_06(tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "# a comment\n"
        "\n"
        "  PLAIN = plain value  \n"
        "export EXPORTED=1\n"
        "DOUBLE=\"double quoted\"\n"
        "SINGLE='single quoted'\n"
        "EQUALS=a=b=c\n"
        "FRAGMENT=http://host/x#frag\n"
        "NOT_INTERPOLATED=${PLAIN}\n"
        "EMPTY=\n"
        "INNER_SPACES=\" kept \"\n"
        "NO_EQUALS_SIGN\n"
        "free text without an equals sign\n"
        "DUPLICATE=first\n"
        "DUPLICATE=second\n"
        "LONE_QUOTE=mis'\n",
    )
    assert read_dotenv(path) == {
        "PLAIN": "plain value",
        "EXPORTED": "1",
        "DOUBLE": "double quoted",
        "SINGLE": "single quoted",
        "EQUALS": "a=b=c",
        "FRAGMENT": "http://host/x#frag",
        "NOT_INTERPOLATED": "${PLAIN}",
        "EMPTY": "",
        "INNER_SPACES": " kept ",
        "DUPLICATE": "second",
        "LONE_QUOTE": "mis'",
    }


def test_documented_differences_from_perago_06(tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "COMMENTED=x # trailing comment\n"
        "ESCAPED=\"a\\nb\"\n"
        "SINGLE_VERBATIM='a\\nb'\n"
        "MULTILINE=\"line one\nline two\"\n",
    )
    assert read_dotenv(path) == {
        "COMMENTED": "x",
        "ESCAPED": "a\nb",
        "SINGLE_VERBATIM": "a\\nb",
        "MULTILINE": "line one\nline two",
    }


@pytest.mark.parametrize(
    "line", ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=\"hunter2", "A='it's'", "A=\"a\"b\"", "A B=1"]
)
def test_unparsable_line_names_file_and_line_but_not_the_value(tmp_path: Path, line: str) -> None:
    path = write_env(tmp_path, f"# header\nGOOD=1\n{line}\n")
    with pytest.raises(RuntimeConfigError) as caught:
        read_dotenv(path)
    message = str(caught.value)
    assert message.startswith(f"{path} line 3 is not a valid KEY=value line")
    assert "hunter2" not in message and "it's" not in message


def test_missing_file_and_directory_mean_no_values(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / ".env") == {}
    (tmp_path / ".env").mkdir()
    assert read_dotenv(tmp_path / ".env") == {}


def test_undecodable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(RuntimeConfigError, match=r"^cannot read .*\.env"):
        read_dotenv(path)


def test_only_the_working_directory_file_is_read(tmp_path: Path) -> None:
    write_env(tmp_path, "PERAGO_WORKER_ID_PREFIX=fromParent\n")
    child = tmp_path / "child"
    child.mkdir()
    config = load_runtime_config("app.x", cwd=child, process_env={}, probe_roots=False)
    assert config.worker_id_prefix == "appx"


def test_process_environment_wins_even_when_empty(tmp_path: Path) -> None:
    write_env(
        tmp_path,
        "PERAGO_WORKER_ID_PREFIX=fromDotenv\nPERAGO_LOG_RETENTION=7d\nCONDUCTOR_SERVER_URL=http://dotenv/api\n",
    )
    config = load_runtime_config(
        "app.x",
        cwd=tmp_path,
        process_env={"PERAGO_WORKER_ID_PREFIX": "fromProcess", "CONDUCTOR_SERVER_URL": ""},
        probe_roots=False,
    )
    assert config.worker_id_prefix == "fromProcess"
    assert config.log_retention.days == 7
    assert config.conductor is None


def test_dotenv_values_are_not_exported(tmp_path: Path) -> None:
    write_env(tmp_path, "PERAGO_TEST_ONLY_IN_DOTENV=1\nPERAGO_WORKER_ID_PREFIX=fromDotenv\n")
    before = dict(os.environ)
    config = load_runtime_config("app.x", cwd=tmp_path, process_env={}, probe_roots=False)
    assert config.worker_id_prefix == "fromDotenv"
    assert dict(os.environ) == before


def test_default_cwd_is_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path, "PERAGO_WORKER_ID_PREFIX=fromCwd\n")
    monkeypatch.chdir(tmp_path)
    assert load_runtime_config("app.x", process_env={}, probe_roots=False).worker_id_prefix == "fromCwd"


def test_explicit_process_env_replaces_the_real_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_WORKER_ID_PREFIX", "fromRealEnvironment")
    assert load_runtime_config("app.x", cwd=tmp_path, probe_roots=False).worker_id_prefix == "fromRealEnvironment"
    assert load_runtime_config("app.x", cwd=tmp_path, process_env={}, probe_roots=False).worker_id_prefix == "appx"


KEYS = st.text(string.ascii_uppercase + "_", min_size=1, max_size=8).filter(lambda k: k != "export")
# Values every .env dialect agrees on: no quotes, backslashes, `#`, newlines or edge spaces.
VALUES = st.text(string.ascii_letters + string.digits + "=:/.,-_@+%", max_size=12)


@given(st.dictionaries(KEYS, VALUES, max_size=6), st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_with_any_quoting(tmp_path: Path, values: dict[str, str], data: st.DataObject) -> None:
    lines = []
    for key, value in values.items():
        quote = data.draw(st.sampled_from(["", "'", '"']))
        export = data.draw(st.sampled_from(["", "export "]))
        lines.append(f"{export}{key} = {quote}{value}{quote}")
    assert read_dotenv(write_env(tmp_path, "\n".join(lines) + "\n")) == values


@given(st.dictionaries(KEYS, VALUES, max_size=6), st.dictionaries(KEYS, VALUES, max_size=6))
def test_merge_is_dotenv_overlaid_by_process(dotenv: dict[str, str], process: dict[str, str]) -> None:
    merged = merge_environment(dotenv, process)
    assert set(merged) == set(dotenv) | set(process)
    for key, value in merged.items():
        assert value == (process[key] if key in process else dotenv[key])


PLACES = st.sampled_from(["nowhere", "dotenv", "process", "both", "process-empty"])


@given(prefix_place=PLACES, mode_place=PLACES)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_precedence_end_to_end(tmp_path: Path, prefix_place: str, mode_place: str) -> None:
    dotenv_lines, process = [], {}
    for name, place, dotenv_value, process_value in [
        ("PERAGO_WORKER_ID_PREFIX", prefix_place, "fromDotenv", "fromProcess"),
        ("PERAGO_EXECUTION_MODE", mode_place, "thread", "process"),
    ]:
        if place in ("dotenv", "both", "process-empty"):
            dotenv_lines.append(f"{name}={dotenv_value}")
        if place in ("process", "both"):
            process[name] = process_value
        if place == "process-empty":
            process[name] = ""
    write_env(tmp_path, "\n".join(dotenv_lines) + "\n")
    if prefix_place == "process-empty":  # present but empty: the prefix must then be non-empty
        with pytest.raises(RuntimeConfigError, match="^PERAGO_WORKER_ID_PREFIX must not be empty$"):
            load_runtime_config("app.x", cwd=tmp_path, process_env=process, probe_roots=False)
        return
    config = load_runtime_config("app.x", cwd=tmp_path, process_env=process, probe_roots=False)
    expected_prefix = {"nowhere": "appx", "dotenv": "fromDotenv", "process": "fromProcess", "both": "fromProcess"}
    expected_mode = {"nowhere": "process", "dotenv": "thread", "process": "process", "both": "process",
                     "process-empty": "process"}
    assert config.worker_id_prefix == expected_prefix[prefix_place]
    assert config.execution_mode == expected_mode[mode_place]
