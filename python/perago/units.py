"""Parsers for the value formats of perago's environment variables.

Every parser takes the raw value and the variable name, and raises `RuntimeConfigError`
naming that variable; the texts are perago 0.6's, so operators' scripts and runbooks that
grep for them keep working. Blank values are the caller's business (they mean "use the
default"); these functions only see values that are meant to be parsed.

Matching is ASCII-only on purpose: perago 0.6 matched case-insensitively with Unicode
rules, so `5ſ` (long s) was accepted as a duration of five *days* and `1\u212aB` (Kelvin
sign) crashed the size parser. Here both are plain format errors.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from perago.errors import RuntimeConfigError

SIZE_UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

_SIZE = re.compile(r"((?:0|[1-9][0-9]*)(?:\.[0-9]+)?)\s*(KB|MB|GB)", re.IGNORECASE | re.ASCII)
_DURATION = re.compile(r"([1-9][0-9]*)([smhd])", re.IGNORECASE | re.ASCII)
_DAYS = re.compile(r"([1-9][0-9]*)d", re.IGNORECASE | re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def parse_size(value: str, *, name: str) -> int:
    """`512KB`, `100 MB`, `1.5GB` → bytes (1024-based units, fractions rounded up)."""
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise RuntimeConfigError(
            f"{name} must be a positive size such as '512KB', '100MB', or '1.5GB'"
        )
    amount = Decimal(match.group(1))
    if amount <= 0:
        raise RuntimeConfigError(f"{name} must be greater than zero")
    scaled = amount * SIZE_UNITS[match.group(2).upper()]
    return int(scaled.to_integral_value(rounding=ROUND_CEILING))


def parse_duration(value: str, *, name: str) -> timedelta:
    """`30s`, `5m`, `1h`, `2d` → a timedelta; zero, fractions and other units are refused."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise RuntimeConfigError(
            f"{name} must be a positive duration such as '30s', '5m', '1h', or '24h'"
        )
    unit = DURATION_UNITS[match.group(2).lower()]
    return _timedelta(name, **{unit: int(match.group(1))})


def parse_retention_days(value: str, *, name: str) -> timedelta:
    """`7d` → seven days. Log retention is counted in whole days only."""
    match = _DAYS.fullmatch(value.strip())
    if match is None:
        raise RuntimeConfigError(f"{name} must be a positive day count such as '7d' or '30d'")
    return _timedelta(name, days=int(match.group(1)))


def _timedelta(name: str, **amount: int) -> timedelta:
    """A timedelta, or a config error naming the variable when it is past Python's range."""
    try:
        return timedelta(**amount)
    except OverflowError:
        raise RuntimeConfigError(f"{name} is too long; the longest duration is {timedelta.max.days}d") from None


def parse_positive_int(value: str, *, name: str, what: str = "a positive integer") -> int:
    """Decimal digits only (`007` is 7; signs, spaces inside and `1e3` are refused), > 0.

    `what` completes "must be ..." for the malformed case, e.g. "a positive integer number
    of milliseconds".
    """
    stripped = value.strip()
    if _DIGITS.fullmatch(stripped) is None:
        raise RuntimeConfigError(f"{name} must be {what}")
    parsed = int(stripped)
    if parsed <= 0:
        raise RuntimeConfigError(f"{name} must be greater than zero")
    return parsed
