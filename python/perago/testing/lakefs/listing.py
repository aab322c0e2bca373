"""lakeFS paging: `after` is exclusive, `amount` defaults to 100 and is capped at 1000.

Every list endpoint answers `{"pagination": {...}, "results": [...]}` where `next_offset` is
the last returned key while `has_more` is true and empty otherwise (spec §6.4, objects/ls).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, TypeVar

from .errors import bad_request
from .model import SortedKeys

DEFAULT_AMOUNT = 100
MAX_PER_PAGE = 1000

T = TypeVar("T")


def page_size(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return DEFAULT_AMOUNT
    try:
        amount = int(raw)
    except ValueError:
        raise bad_request(f"amount: invalid integer {raw!r}") from None
    if amount <= 0:
        return DEFAULT_AMOUNT
    return min(amount, MAX_PER_PAGE)


def envelope(results: list[dict], has_more: bool, key: Callable[[dict], str]) -> dict:
    return {
        "pagination": {
            "has_more": has_more,
            "next_offset": key(results[-1]) if has_more and results else "",
            "results": len(results),
            "max_per_page": MAX_PER_PAGE,
        },
        "results": results,
    }


def page_sorted(items: Iterable[T], key: Callable[[T], str], prefix: str, after: str, amount: int) -> tuple[list[T], bool]:
    """Page over items already sorted by `key`."""
    page: list[T] = []
    for item in items:
        name = key(item)
        if not name.startswith(prefix) or (after and name <= after):
            continue
        if len(page) == amount:
            return page, True
        page.append(item)
    return page, False


def page_keys(
    keys: SortedKeys, prefix: str, after: str, delimiter: str, amount: int
) -> tuple[list[tuple[str, bool]], bool]:
    """Page over object keys; returns (path, is_common_prefix) pairs and has_more.

    With a delimiter, keys sharing `prefix + <segment> + delimiter` collapse into one common
    prefix entry, and `after` applies to those entries too.
    """
    out: list[tuple[str, bool]] = []
    index = keys.start_index(prefix, after)
    total = len(keys.keys)
    while index < total:
        key = keys.keys[index]
        if not key.startswith(prefix):
            break
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut != -1:
                common = key[: cut + len(delimiter)]
                if after and common <= after:
                    index = keys.skip_past_prefix(index, common)
                    continue
                if len(out) == amount:
                    return out, True
                out.append((common, True))
                index = keys.skip_past_prefix(index, common)
                continue
        if len(out) == amount:
            return out, True
        out.append((key, False))
        index += 1
    return out, False
