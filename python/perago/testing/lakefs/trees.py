"""Diff and three-way merge of trees by entry identity (spec §6.4 merge and revert).

A key is a conflict when both sides changed it differently relative to the base (a delete
counts as a change); identical changes on both sides are not conflicts. The same function
serves merge (base = merge base, ours = destination, theirs = source) and revert (base = the
reverted commit, theirs = its parent).
"""

from __future__ import annotations

from typing import Iterator, Optional

from .errors import bad_request
from .model import Entry, Tree

STRATEGIES = (None, "dest-wins", "source-wins")


def _same(a: Optional[Entry], b: Optional[Entry]) -> bool:
    if a is None or b is None:
        return a is b
    return a.identity == b.identity


def diff(left: Tree, right: Tree) -> Iterator[tuple[str, str, Optional[Entry]]]:
    """Yield (path, "added"|"removed"|"changed", entry) for what turns `left` into `right`, sorted."""
    for path in sorted(set(left) | set(right)):
        before, after = left.get(path), right.get(path)
        if _same(before, after):
            continue
        if before is None:
            yield path, "added", after
        elif after is None:
            yield path, "removed", before
        else:
            yield path, "changed", after


def merge3(base: Tree, ours: Tree, theirs: Tree, strategy: Optional[str]) -> tuple[dict[str, Entry], list[str]]:
    """Apply the change base→theirs onto ours; return the result and the conflicting paths."""
    if strategy not in STRATEGIES:
        raise bad_request(f"merge strategy: invalid value {strategy!r} (use dest-wins or source-wins)")
    result = dict(ours)
    conflicts: list[str] = []
    for path in set(base) | set(theirs):
        b, t = base.get(path), theirs.get(path)
        if _same(b, t):
            continue
        o = ours.get(path)
        if _same(o, b) or strategy == "source-wins":
            take = t
        elif _same(o, t) or strategy == "dest-wins":
            continue
        else:
            conflicts.append(path)
            continue
        if take is None:
            result.pop(path, None)
        else:
            result[path] = take
    return result, sorted(conflicts)
