"""Branch protection rules: glob patterns with `*` and `?` (spec §6.4, branch protection).

A matching rule blocks object writes and deletes, commits, resetting uncommitted changes and
hard reset on that branch; merges, reverts and branch deletion stay allowed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def is_protected(patterns: Iterable[str], branch: str) -> bool:
    return any(_compile(pattern).fullmatch(branch) for pattern in patterns)
