"""Object key ↔ local path mapping: nothing maps outside the workspace, collisions are refused."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from perago.errors import TaskTerminalError
from perago.workspace.errors import WorkspaceContractError
from perago.workspace.keys import (
    MARKER_NAME,
    WorkspaceProjection,
    check_collisions,
    path_problem,
)

segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
safe_relative = st.lists(segment, min_size=1, max_size=4).map("/".join)
any_key = st.text(
    alphabet=st.sampled_from(list("ab/.\\:C \x00")) | st.characters(blacklist_categories=("Cs",)),
    max_size=20,
)


@given(safe_relative, st.sampled_from(["", "audio", "audio/render"]))
def test_safe_paths_round_trip_through_their_object_key(relative: str, prefix: str) -> None:
    assume(path_problem(relative) is None)
    assume(relative.rsplit("/", 1)[-1] != MARKER_NAME)
    projection = WorkspaceProjection(prefix)
    key = projection.object_key(relative)
    assert projection.relative_path(key, 1) == relative


@given(any_key, st.sampled_from(["", "p"]))
def test_every_accepted_key_stays_inside_the_workspace(raw: str, prefix: str) -> None:
    projection = WorkspaceProjection(prefix)
    key = projection.listing_prefix + raw
    try:
        relative = projection.relative_path(key, 1)
    except WorkspaceContractError:
        return
    if relative is None:
        return
    joined = posixpath.normpath(posixpath.join("/attempt/ws", relative))
    assert joined.startswith("/attempt/ws/")
    assert "\\" not in relative and "\x00" not in relative
    assert ".." not in relative.split("/")


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "a/../../b", "/abs/x", "a//b", "a/./b", "C:x", "raw\\a.txt", "x\x00y", "dir/"],
)
def test_dangerous_keys_are_refused_terminally_naming_the_key(key: str) -> None:
    projection = WorkspaceProjection("")
    with pytest.raises(WorkspaceContractError) as raised:
        projection.relative_path(key, 5)
    assert isinstance(raised.value, TaskTerminalError)
    assert repr(key) in str(raised.value)


def test_zero_byte_directory_markers_and_perago_markers_are_skipped() -> None:
    projection = WorkspaceProjection("audio")
    assert projection.relative_path("audio/raw/", 0) is None
    assert projection.relative_path(f"audio/raw/{MARKER_NAME}", 10) is None
    assert projection.relative_path("audio/raw/a.wav", 10) == "raw/a.wav"


def test_keys_outside_the_listing_prefix_are_refused() -> None:
    with pytest.raises(WorkspaceContractError):
        WorkspaceProjection("audio").relative_path("audio2/x", 1)


def test_local_paths_that_cannot_be_keys_are_refused() -> None:
    with pytest.raises(WorkspaceContractError, match="backslash"):
        WorkspaceProjection("").object_key("a\\b")


@pytest.mark.parametrize(
    "paths",
    [
        ["README.md", "readme.md"],
        ["caf\u00e9.txt", "cafe\u0301.txt"],  # NFC vs NFD
        ["Stra\u00dfe", "STRASSE"],  # casefold
        ["x", "x/y"],
        ["X", "x/y"],
    ],
)
def test_collisions_on_case_insensitive_or_normalizing_filesystems_are_refused(paths: list[str]) -> None:
    with pytest.raises(WorkspaceContractError) as raised:
        check_collisions(paths, what="lakeFS object keys")
    assert "lakeFS object keys" in str(raised.value)


@given(st.lists(safe_relative, unique_by=lambda p: p.casefold(), max_size=30))
def test_collision_check_accepts_exactly_the_sets_that_stay_distinct(paths: list[str]) -> None:
    from perago.workspace.keys import fold

    folded = [fold(p) for p in paths]
    distinct = len(set(folded)) == len(folded)
    prefix_clash = any(
        other.startswith(f + "/") for f in folded for other in folded if other != f
    )
    if distinct and not prefix_clash:
        check_collisions(paths)
    else:
        with pytest.raises(WorkspaceContractError):
            check_collisions(paths)
