"""The value formats of perago's variables: sizes, durations, day counts, positive integers."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perago import RuntimeConfigError
from perago.units import parse_duration, parse_positive_int, parse_retention_days, parse_size

UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips))


@st.composite
def size_texts(draw: st.DrawFn) -> tuple[str, int]:
    whole = draw(st.integers(min_value=0, max_value=10**6))
    fraction = draw(st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=6)))
    amount = str(whole) if fraction is None else f"{whole}.{fraction}"
    unit = draw(st.sampled_from(sorted(UNITS)))
    spaces = draw(st.sampled_from(["", " ", "  ", "\t"]))
    padding = draw(st.sampled_from(["", " ", "\n"]))
    expected = math.ceil(Decimal(amount) * UNITS[unit])
    return f"{padding}{amount}{spaces}{random_case(draw, unit)}{padding}", expected


@given(size_texts())
def test_size_is_ceil_of_amount_times_1024_based_unit(case: tuple[str, int]) -> None:
    text, expected = case
    if expected == 0:
        with pytest.raises(RuntimeConfigError, match=r"^PERAGO_LOG_FILE_MAX_SIZE must be greater than zero$"):
            parse_size(text, name="PERAGO_LOG_FILE_MAX_SIZE")
    else:
        assert parse_size(text, name="PERAGO_LOG_FILE_MAX_SIZE") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512KB", 524288), ("1.5GB", 1610612736), ("0.0001KB", 1), ("1 MB", 1048576), ("100mb", 104857600)],
)
def test_size_examples(text: str, expected: int) -> None:
    assert parse_size(text, name="X") == expected


@pytest.mark.parametrize(
    "text", ["100", "01MB", "1.MB", "1TB", "1e3KB", "-1MB", ".5MB", "1,5MB", "MB", "1 M B", "1\u212aB", "１MB"]
)
def test_malformed_sizes_name_the_variable(text: str) -> None:
    with pytest.raises(RuntimeConfigError) as caught:
        parse_size(text, name="PERAGO_LOG_FILE_MAX_SIZE")
    assert str(caught.value) == (
        "PERAGO_LOG_FILE_MAX_SIZE must be a positive size such as '512KB', '100MB', or '1.5GB'"
    )


@pytest.mark.parametrize("text", ["0MB", "0.0KB", "0 gb"])
def test_zero_sizes_are_refused(text: str) -> None:
    with pytest.raises(RuntimeConfigError, match=r"^X must be greater than zero$"):
        parse_size(text, name="X")


SIZE_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?\s*(KB|MB|GB)", re.IGNORECASE | re.ASCII)


@given(st.text(max_size=12))
def test_size_rejects_everything_outside_the_grammar(text: str) -> None:
    match = SIZE_PATTERN.fullmatch(text.strip())
    if match and Decimal(match.group(1) + (match.group(2) or "")) > 0:
        assert parse_size(text, name="X") >= 1
    else:
        with pytest.raises(RuntimeConfigError, match=r"^X must be"):
            parse_size(text, name="X")


@given(st.integers(min_value=1, max_value=10**9), st.data())
def test_duration_is_amount_times_unit(amount: int, data: st.DataObject) -> None:
    unit = data.draw(st.sampled_from("smhdSMHD"))
    padding = data.draw(st.sampled_from(["", " ", "\t "]))
    text = f"{padding}{amount}{unit}{padding}"
    seconds = amount * SECONDS_PER_UNIT[unit.lower()]
    if seconds > timedelta.max // timedelta(seconds=1):
        with pytest.raises(RuntimeConfigError, match=r"^PERAGO_WORKSPACE_GC_TTL is too long; the longest duration is 999999999d$"):
            parse_duration(text, name="PERAGO_WORKSPACE_GC_TTL")
    else:
        assert parse_duration(text, name="PERAGO_WORKSPACE_GC_TTL") == timedelta(seconds=seconds)


DURATION_PATTERN = re.compile(r"[1-9][0-9]*[smhd]", re.IGNORECASE | re.ASCII)


@given(st.text(max_size=8))
def test_duration_rejects_everything_outside_the_grammar(text: str) -> None:
    if DURATION_PATTERN.fullmatch(text.strip()):
        assert parse_duration(text, name="X") > timedelta(0)
    else:
        with pytest.raises(RuntimeConfigError) as caught:
            parse_duration(text, name="PERAGO_SHUTDOWN_FORCE_KILL_AFTER")
        assert str(caught.value) == (
            "PERAGO_SHUTDOWN_FORCE_KILL_AFTER must be a positive duration such as '30s', '5m', '1h', or '24h'"
        )


@pytest.mark.parametrize("text", ["0s", "1w", "1.5h", "10", "05m", "-1h", "1 h", "h", "5ſ", "1ms"])
def test_duration_examples_refused(text: str) -> None:
    with pytest.raises(RuntimeConfigError, match="positive duration"):
        parse_duration(text, name="X")


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from("dD"))
def test_retention_is_whole_days(days: int, unit: str) -> None:
    assert parse_retention_days(f" {days}{unit} ", name="PERAGO_LOG_RETENTION") == timedelta(days=days)


def test_durations_past_pythons_range_are_config_errors_naming_the_variable() -> None:
    with pytest.raises(RuntimeConfigError, match=r"^PERAGO_LOG_RETENTION is too long"):
        parse_retention_days("1000000000d", name="PERAGO_LOG_RETENTION")
    with pytest.raises(RuntimeConfigError, match=r"^PERAGO_SHUTDOWN_FORCE_KILL_AFTER is too long"):
        parse_duration("99999999999999999999h", name="PERAGO_SHUTDOWN_FORCE_KILL_AFTER")


@pytest.mark.parametrize("text", ["0d", "05d", "1h", "7", "1.5d", "d", "7 d", "1w"])
def test_retention_refuses_anything_but_positive_days(text: str) -> None:
    with pytest.raises(RuntimeConfigError) as caught:
        parse_retention_days(text, name="PERAGO_LOG_RETENTION")
    assert str(caught.value) == "PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'"


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=0, max_value=3))
def test_positive_int_accepts_leading_zeros(value: int, zeros: int) -> None:
    assert parse_positive_int(f" {'0' * zeros}{value} ", name="X") == value


@pytest.mark.parametrize("text", ["-1", "+1", "1.0", "1e3", "one", "1 000", "٣"])
def test_positive_int_refuses_non_digits(text: str) -> None:
    with pytest.raises(RuntimeConfigError, match=r"^PERAGO_FAILURE_REASON_MAX_LENGTH must be a positive integer$"):
        parse_positive_int(text, name="PERAGO_FAILURE_REASON_MAX_LENGTH")


def test_positive_int_refuses_zero() -> None:
    with pytest.raises(RuntimeConfigError, match=r"^X must be greater than zero$"):
        parse_positive_int("000", name="X")
