"""Turning arbitrary ids (module targets, worker ids, task ids) into one safe path segment."""

from __future__ import annotations

import re

_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.=-]+")


def safe_segment(value: object) -> str:
    """`str(value)` with each run of characters outside `[A-Za-z0-9_.=-]` replaced by one
    `_`, leading/trailing `.` and `_` stripped, and `unknown` if nothing is left.

    The result can never be `.`, `..`, empty or contain a separator, so joining it under a
    root never escapes that root. Ordinary module targets and worker ids pass unchanged.
    """
    return _UNSAFE_RUN.sub("_", str(value)).strip("._") or "unknown"
