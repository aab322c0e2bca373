"""Per-process JSONL logs: file layout, record format, UTC+08:00, rotation, retention, secrets."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loguru import logger

from perago import load_runtime_config
from perago.path_segment import safe_segment
from perago.runtime_logging import (
    configure_jsonl_logging,
    configure_process_logging,
    debug_records_wanted,
    log_file_path,
    log_process_started,
    log_task_record,
)

STARTED = r"pid=(\d+)__started=(\d{8}T\d{6}\+0800)"
ROTATED_SUFFIX = r"\.\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_\d{6}(\.\d+)?\.jsonl"


@pytest.fixture(autouse=True)
def restore_loguru() -> Iterator[None]:
    yield
    logger.remove()
    logger.configure(patcher=None, extra={})
    logger.add(sys.stderr)


def records(path: Path) -> list[dict[str, Any]]:
    logger.complete()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def configure(tmp_path: Path, **overrides: Any) -> Path:
    options: dict[str, Any] = {
        "log_root": tmp_path,
        "module_target": "app.workers.features_build",
        "worker_id": "prodFeat0001",
        "max_bytes": 100 * 1024 * 1024,
        "retention": timedelta(days=30),
    }
    options.update(overrides)
    return configure_jsonl_logging(**options)


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("app.workers.features_build", "app.workers.features_build"),
        ("prodFeat0001", "prodFeat0001"),
        ("a/b\\c d", "a_b_c_d"),
        ("../..", "unknown"),
        ("__x__", "x"),
        ("", "unknown"),
        ("wörk//task", "w_rk_task"),
        (42, "42"),
    ],
)
def test_safe_segment_examples(value: object, segment: str) -> None:
    assert safe_segment(value) == segment


@given(st.text(max_size=40))
def test_safe_segment_is_always_one_harmless_path_component(value: str) -> None:
    segment = safe_segment(value)
    assert re.fullmatch(r"[A-Za-z0-9_.=-]+", segment)
    assert segment not in {".", ".."} and not segment.startswith((".", "_")) and not segment.endswith((".", "_"))
    assert safe_segment(segment) == segment


def test_file_path_layout_uses_utc_plus_8() -> None:
    started = datetime(2026, 5, 20, 6, 30, 15, tzinfo=timezone.utc)
    path = log_file_path(Path("/var/log/perago"), "app.workers.features_build", "prodFeat0001", pid=42118, started=started)
    assert path == Path(
        "/var/log/perago/app.workers.features_build/worker_id=prodFeat0001/pid=42118__started=20260520T143015+0800.jsonl"
    )
    odd = log_file_path(Path("/l"), "../x", "a b", pid=1, started=started)
    assert odd == Path("/l/x/worker_id=a_b/pid=1__started=20260520T143015+0800.jsonl")


def test_configure_creates_the_file_under_the_configured_root(tmp_path: Path) -> None:
    config = load_runtime_config(
        "app.workers.features_build", process_env={"PERAGO_LOG_ROOT": str(tmp_path)}, probe_roots=False
    )
    log_file = configure_process_logging(config, module_target="app.workers.features_build", worker_id="prodFeat0001")
    assert log_file.parent == tmp_path / "app.workers.features_build" / "worker_id=prodFeat0001"
    match = re.fullmatch(STARTED + r"\.jsonl", log_file.name)
    assert match and int(match.group(1)) == os.getpid()
    started = datetime.strptime(match.group(2), "%Y%m%dT%H%M%S%z")
    assert abs(started - datetime.now(timezone.utc)) < timedelta(hours=1)
    logger.info("hello")
    assert [r["record"]["message"] for r in records(log_file)] == ["hello"]


def test_startup_record_and_format(tmp_path: Path) -> None:
    log_file = configure(tmp_path)
    log_process_started("broker", worker_id="prodFeatBroker", module_target="app.workers.features_build", log_file=log_file)
    log_process_started("executor", worker_id="prodFeat0001", module_target="app.workers.features_build", log_file=log_file)
    log_process_started("runner", worker_id="prodFeatBroker", module_target="app.workers.features_build", log_file=log_file)
    lines = records(log_file)
    assert [line["record"]["message"] for line in lines] == [
        "process broker started",
        "process executor started",
        "thread runner started",
    ]
    first = lines[0]
    assert set(first) == {"text", "record"}
    assert set(first["record"]) >= {
        "elapsed", "exception", "extra", "file", "function", "level", "line",
        "message", "module", "name", "process", "thread", "time",
    }
    assert first["record"]["extra"] == {
        "worker_id": "prodFeatBroker",
        "module_target": "app.workers.features_build",
        "log_file": str(log_file),
    }
    assert first["record"]["level"]["name"] == "INFO" and first["record"]["exception"] is None
    assert first["record"]["process"]["id"] == os.getpid()
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \| INFO     \| test_runtime_logging:test_startup_record_and_format:\d+ - process broker started\n",
        first["text"],
    )


def test_every_record_carries_the_worker_id(tmp_path: Path) -> None:
    log_file = configure(tmp_path)
    logger.info("plain")
    logger.bind(task_id="t-1").warning("bound")
    lines = records(log_file)
    assert [line["record"]["extra"] for line in lines] == [
        {"worker_id": "prodFeat0001"},
        {"worker_id": "prodFeat0001", "task_id": "t-1"},
    ]


def test_times_are_utc_plus_8_whatever_the_host_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        log_file = configure(tmp_path)
        logger.info("zoned")
        record = records(log_file)[0]
    finally:
        monkeypatch.undo()
        time.tzset()
    shown = datetime.fromisoformat(record["record"]["time"]["repr"])
    assert record["record"]["time"]["repr"].endswith("+08:00")
    assert shown.timestamp() == pytest.approx(record["record"]["time"]["timestamp"])
    assert record["text"][:19] == shown.strftime("%Y-%m-%d %H:%M:%S")


def test_configure_removes_previous_sinks(tmp_path: Path) -> None:
    seen: list[str] = []
    logger.add(seen.append, format="{message}")
    configure(tmp_path)
    logger.info("only in the file")
    logger.complete()
    assert seen == []


def test_rotation_renames_full_files_and_keeps_every_record(tmp_path: Path) -> None:
    log_file = configure(tmp_path, max_bytes=4096)
    for index in range(40):
        logger.info("record {} {}", index, "x" * 200)
    logger.complete()
    files = sorted(log_file.parent.iterdir())
    rotated = [f for f in files if f != log_file]
    assert len(rotated) >= 2
    stem = re.escape(log_file.name[: -len(".jsonl")])
    for path in rotated:
        assert re.fullmatch(stem + ROTATED_SUFFIX, path.name), path.name
        assert path.stat().st_size <= 4096
    messages = [
        json.loads(line)["record"]["message"]
        for path in files
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(messages, key=lambda m: int(m.split()[1])) == [f"record {i} {'x' * 200}" for i in range(40)]


def test_retention_deletes_old_rotated_files_of_this_sink_only(tmp_path: Path) -> None:
    log_file = configure(tmp_path, max_bytes=2048, retention=timedelta(days=1))
    stem = log_file.name[: -len(".jsonl")]
    own_old = log_file.parent / f"{stem}.2020-01-01_00-00-00_000000.jsonl"
    other_old = log_file.parent / "pid=1__started=20200101T000000+0800.jsonl"
    own_recent = log_file.parent / f"{stem}.2099-01-01_00-00-00_000000.jsonl"
    long_ago = time.time() - 3 * 86400
    for path in (own_old, other_old, own_recent):
        path.write_text("{}\n")
    for path in (own_old, other_old):
        os.utime(path, (long_ago, long_ago))
    for index in range(20):
        logger.info("filler {} {}", index, "y" * 200)
    logger.complete()
    assert not own_old.exists()
    assert other_old.exists() and own_recent.exists()


LAKEFS_SECRET = "lakefs-s3cr3t-value"
AUTH_SECRET = "conductor-auth-s3cr3t"


def configure_with_secrets(tmp_path: Path) -> Path:
    config = load_runtime_config(
        "app.x",
        process_env={
            "PERAGO_LOG_ROOT": str(tmp_path),
            "CONDUCTOR_SERVER_URL": "http://c/api",
            "CONDUCTOR_AUTH_KEY": "key-id",
            "CONDUCTOR_AUTH_SECRET": AUTH_SECRET,
            "LAKECTL_SERVER_ENDPOINT_URL": "http://lakefs",
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA",
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": LAKEFS_SECRET,
        },
        probe_roots=False,
    )
    return configure_process_logging(config, module_target="app.x", worker_id="appx0001")


class Leaky:
    def __str__(self) -> str:
        return f"Leaky({LAKEFS_SECRET})"


def test_no_secret_reaches_any_record(tmp_path: Path) -> None:
    log_file = configure_with_secrets(tmp_path)
    basic = base64.b64encode(f"AKIA:{LAKEFS_SECRET}".encode()).decode()
    logger.info("connecting with {} and {}", LAKEFS_SECRET, AUTH_SECRET)
    logger.info("Authorization: Basic {}", basic)
    logger.bind(headers={"Authorization": [AUTH_SECRET]}, obj=Leaky(), count=3).info("bound values")
    try:
        try:
            raise KeyError(f"token {AUTH_SECRET}")
        except KeyError as inner:
            error = ConnectionError(f"http://AKIA:{LAKEFS_SECRET}@lakefs refused")
            error.add_note(f"retrying with {AUTH_SECRET}")
            raise error from inner
    except ConnectionError:
        logger.exception("upload failed")
    logger.complete()
    text = log_file.read_text(encoding="utf-8")
    assert LAKEFS_SECRET not in text and AUTH_SECRET not in text and basic not in text
    lines = records(log_file)
    assert lines[0]["record"]["message"] == "connecting with ********** and **********"
    assert lines[2]["record"]["extra"]["headers"] == {"Authorization": ["**********"]}
    assert lines[2]["record"]["extra"]["obj"] == "Leaky(**********)"
    assert lines[2]["record"]["extra"]["count"] == 3
    failure = lines[3]
    assert failure["record"]["exception"] == {
        "type": "ConnectionError",
        "value": "http://AKIA:**********@lakefs refused",
        "traceback": True,
    }
    assert "KeyError: 'token **********'" in failure["text"]
    assert "retrying with **********" in failure["text"]
    assert "The above exception was the direct cause" in failure["text"]


def test_exceptions_without_secrets_are_logged_untouched(tmp_path: Path) -> None:
    log_file = configure_with_secrets(tmp_path)
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    record = records(log_file)[0]
    assert record["record"]["exception"] == {"type": "KeyError", "value": "'missing'", "traceback": True}
    assert "KeyError: 'missing'" in record["text"]


def test_tracebacks_do_not_render_local_variables(tmp_path: Path) -> None:
    log_file = configure(tmp_path)
    password = "local-only-value"
    try:
        raise RuntimeError("boom" + password[:0])  # diagnose=True would print `password`
    except RuntimeError:
        logger.exception("failed")
    assert "local-only-value" not in records(log_file)[0]["text"]


def test_debug_records_are_filtered_out_at_the_sink_level(tmp_path: Path) -> None:
    log_file = configure(tmp_path)
    logger.debug("task attempt started")
    logger.info("task attempt finished")
    assert [line["record"]["message"] for line in records(log_file)] == ["task attempt finished"]



def test_debug_records_are_wanted_only_while_a_sink_takes_them(tmp_path: Path) -> None:
    configure(tmp_path)
    assert not debug_records_wanted()
    debug_sink = logger.add(lambda message: None, level="DEBUG")
    assert debug_records_wanted()
    logger.remove(debug_sink)
    assert not debug_records_wanted()

def test_records_from_many_threads_are_whole_lines(tmp_path: Path) -> None:
    """loguru's records and `log_task_record`'s, interleaved, across rotations."""
    log_file = configure(tmp_path, max_bytes=64 * 1024)

    def write(thread: int) -> None:
        for index in range(50):
            if index % 2:
                log_task_record("INFO", f"record {index}", {"thread": thread, "pad": "z" * 300})
            else:
                logger.bind(thread=thread).info("record {} {}", index, "z" * 300)

    threads = [threading.Thread(target=write, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = [
        json.loads(line)["record"]
        for path in log_file.parent.iterdir()
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert sorted((r["extra"]["thread"], int(r["message"].split()[1])) for r in lines) == [
        (thread, index) for thread in range(4) for index in range(50)
    ]
    assert len(list(log_file.parent.iterdir())) >= 2  # rotated while four threads wrote


def _task_records_both_ways(level: str, fields: dict[str, Any]) -> None:
    """The same call through loguru and through `log_task_record`, from one function."""
    logger.log(level, "task attempt finished", **fields)
    log_task_record(level, "task attempt finished", fields)  # type: ignore[arg-type]


def test_task_records_match_what_loguru_writes(tmp_path: Path) -> None:
    log_file = configure(tmp_path)
    fields = {"status": "FAILED", "task_id": "t-1", "retry_count": 2, "reason": "ValueError: bad\nline", "path": Path("/x")}
    for level in ("INFO", "WARNING"):
        _task_records_both_ways(level, fields)
    lines = records(log_file)
    assert len(lines) == 4
    for via_loguru, direct in (lines[0:2], lines[2:4]):
        mask_moments = re.compile(r"^\S+ \S+ \| [A-Z]+ +\| (\S+):(\S+):\d+ - ")
        assert mask_moments.sub(r"\1:\2 - ", direct["text"]) == mask_moments.sub(r"\1:\2 - ", via_loguru["text"])
        assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \| ", direct["text"])
        ours, theirs = direct["record"], via_loguru["record"]
        assert ours.keys() == theirs.keys()
        for key in ("exception", "extra", "file", "function", "level", "message", "module", "name", "process", "thread"):
            assert ours[key] == theirs[key], key
        assert ours["line"] == theirs["line"] + 1  # the next line of the same function
        assert ours["time"]["repr"].endswith("+08:00")
        assert 0 <= ours["time"]["timestamp"] - theirs["time"]["timestamp"] < 5
        assert abs(ours["elapsed"]["seconds"] - theirs["elapsed"]["seconds"]) < 5
    assert lines[2]["record"]["extra"] == {"worker_id": "prodFeat0001", **fields, "path": "/x"}


def test_task_records_mask_secrets(tmp_path: Path) -> None:
    log_file = configure_with_secrets(tmp_path)
    log_task_record("WARNING", f"task attempt finished {AUTH_SECRET}", {"reason": f"refused {LAKEFS_SECRET}"})
    text = log_file.read_text(encoding="utf-8")
    assert AUTH_SECRET not in text and LAKEFS_SECRET not in text
    assert records(log_file)[0]["record"]["extra"]["reason"] == "refused **********"


def test_task_records_go_through_loguru_when_perago_logging_was_replaced(tmp_path: Path) -> None:
    configure(tmp_path)
    seen: list[str] = []
    logger.remove()
    logger.add(lambda message: seen.append(message.record["message"]), level="INFO")
    log_task_record("INFO", "task attempt finished", {"status": "COMPLETED"})
    assert seen == ["task attempt finished"]


@pytest.mark.parametrize(
    "offset",
    [0, 250_000, 1_000_001, 59_999_999, 3_599_000_000, 86_400_000_000, 2 * 86_400_000_000 + 123_456, -2_500_000],
    ids=["import", "quarter", "one-micro", "minute-carry", "hour", "one-day", "two-days", "clock-back"],
)
def test_task_record_times_read_like_datetime_and_timedelta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    """The record's time and elapsed fields are what loguru's datetime/timedelta would show,
    whole seconds and day counts included, whatever the moment."""
    import perago.runtime_logging as runtime_logging

    log_file = configure(tmp_path)
    since = runtime_logging._LOGGING_IMPORTED_US
    now = since + offset
    moments = (now, now - now % 1_000_000, now - now % 1_000_000 + 999_999)
    for moment in moments:
        monkeypatch.setattr(runtime_logging.time, "time_ns", lambda moment=moment: moment * 1000 + 999)
        log_task_record("INFO", "task attempt finished", {})
    monkeypatch.undo()
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for line, moment in zip(records(log_file), moments, strict=True):
        expected_time = (epoch + timedelta(microseconds=moment)).astimezone(timezone(timedelta(hours=8)))
        expected_elapsed = timedelta(microseconds=moment - since)
        record = line["record"]
        assert record["time"] == {"repr": str(expected_time), "timestamp": expected_time.timestamp()}
        assert record["elapsed"] == {"repr": str(expected_elapsed), "seconds": expected_elapsed.total_seconds()}
        assert line["text"].startswith(f"{str(expected_time)[:19]}.{expected_time.microsecond // 1000:03d} | INFO ")


def test_task_records_from_threads_in_different_seconds_keep_their_own_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thread logs in a second of its own: no record shows another thread's second."""
    import perago.runtime_logging as runtime_logging

    log_file = configure(tmp_path)
    base = runtime_logging._LOGGING_IMPORTED_US // 1_000_000 * 1_000_000 + 10_000_000
    clock = threading.local()
    monkeypatch.setattr(runtime_logging.time, "time_ns", lambda: clock.micros * 1000)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, in the middle of a record too

    def log(thread: int) -> None:
        for index in range(300):
            clock.micros = base + thread * 1_000_000 + index
            log_task_record("INFO", "task attempt finished", {"thread": thread})

    try:
        threads = [threading.Thread(target=log, args=(thread,)) for thread in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    tz = timezone(timedelta(hours=8))
    lines = records(log_file)
    assert len(lines) == 1200
    for line in lines:
        record = line["record"]
        moment = datetime.fromtimestamp(record["time"]["timestamp"], tz)
        assert moment.second == (base // 1_000_000 + record["extra"]["thread"]) % 60
        assert record["time"]["repr"] == str(moment)
        assert line["text"].startswith(str(moment)[:19])
        elapsed = timedelta(seconds=record["elapsed"]["seconds"])
        assert record["elapsed"]["repr"] == str(elapsed)
