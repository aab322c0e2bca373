"""Property tests of the rules the endpoints share: paging, ref parsing, three-way merge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perago.testing.lakefs.errors import ApiError
from perago.testing.lakefs.listing import page_keys
from perago.testing.lakefs.model import Entry, SortedKeys
from perago.testing.lakefs.refs import parse_ref
from perago.testing.lakefs.trees import merge3

keys = st.text(alphabet="ab/é", min_size=1, max_size=5)


def reference_listing(all_keys: set[str], prefix: str, delimiter: str) -> list[tuple[str, bool]]:
    entries: set[tuple[str, bool]] = set()
    for key in all_keys:
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entries.add((key[: cut + len(delimiter)], True) if cut != -1 else (key, False))
    return sorted(entries)


@settings(max_examples=200, deadline=None)
@given(st.sets(keys, max_size=25), st.text(alphabet="ab/", max_size=2), st.sampled_from(["", "/"]), st.integers(1, 4))
def test_following_next_offset_yields_the_whole_listing_once(
    all_keys: set[str], prefix: str, delimiter: str, amount: int
) -> None:
    sorted_keys = SortedKeys(sorted(all_keys))
    collected: list[tuple[str, bool]] = []
    after = ""
    while True:
        page, has_more = page_keys(sorted_keys, prefix, after, delimiter, amount)
        assert len(page) <= amount
        collected.extend(page)
        if not has_more:
            break
        assert len(page) == amount
        after = page[-1][0]
    assert collected == reference_listing(all_keys, prefix, delimiter)


@pytest.mark.parametrize(
    ("text", "base", "committed", "staging", "steps"),
    [
        ("main", "main", False, False, ()),
        ("main@", "main", True, False, ()),
        ("main$", "main", False, True, ()),
        ("main~", "main", False, False, (("~", 1),)),
        ("main~3^2", "main", False, False, (("~", 3), ("^", 2))),
        ("abc123^0", "abc123", False, False, (("^", 0),)),
    ],
)
def test_ref_expressions(text: str, base: str, committed: bool, staging: bool, steps: tuple) -> None:
    parsed = parse_ref(text)
    assert (parsed.base, parsed.committed_only, parsed.staging, parsed.steps) == (base, committed, staging, steps)


@pytest.mark.parametrize("text", ["", " main", "ma in", "~1", "main~x", "main$~1", None, 5])
def test_invalid_ref_expressions_are_400(text: object) -> None:
    with pytest.raises(ApiError) as caught:
        parse_ref(text)
    assert caught.value.status == 400


versions = st.sampled_from([None, "1", "2", "3"])


def tree_of(values: dict[str, str | None]) -> dict[str, Entry]:
    return {k: Entry(v, v, 1, 0, "application/octet-stream") for k, v in values.items() if v is not None}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcd"), st.tuples(versions, versions, versions), max_size=4))
def test_three_way_merge_rules(cells: dict[str, tuple[str | None, str | None, str | None]]) -> None:
    base = tree_of({k: v[0] for k, v in cells.items()})
    ours = tree_of({k: v[1] for k, v in cells.items()})
    theirs = tree_of({k: v[2] for k, v in cells.items()})
    result, conflicts = merge3(base, ours, theirs, None)
    for key, (b, o, t) in cells.items():
        if b != o and b != t and o != t:
            assert key in conflicts
            continue
        assert key not in conflicts
        expected = t if o == b else o
        assert (result[key].checksum if key in result else None) == expected
    source_wins, none_left = merge3(base, ours, theirs, "source-wins")
    assert none_left == []
    for key in conflicts:
        assert (source_wins[key].checksum if key in source_wins else None) == cells[key][2]
    dest_wins, _ = merge3(base, ours, theirs, "dest-wins")
    for key in conflicts:
        assert (dest_wins[key].checksum if key in dest_wins else None) == cells[key][1]
