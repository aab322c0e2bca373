"""WorkspaceSpec prefix normalization as properties; the spec's example table is in test_oracle_cases."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from perago import WorkspaceSpec
from perago.workspace_spec import normalize_prefix

segment = st.text(alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)), min_size=1).filter(
    lambda s: s not in {".", ".."}
)
relative_prefix = st.lists(segment, min_size=1, max_size=4).map("/".join).filter(lambda s: s.strip() == s)
whitespace = st.text(alphabet=" \t\n", max_size=3)
prefix_text = st.text(alphabet=st.sampled_from(["a", ".", "/", "\\", " "]), max_size=10)


@given(whitespace, st.integers(min_value=0, max_value=3), relative_prefix, whitespace)
def test_leading_slashes_and_surrounding_whitespace_are_dropped(
    before: str, slashes: int, prefix: str, after: str
) -> None:
    assert WorkspaceSpec(prefix=f"{before}{'/' * slashes}{prefix}{after}").prefix == prefix


@given(whitespace, whitespace)
def test_a_lone_slash_is_the_repository_root(before: str, after: str) -> None:
    assert WorkspaceSpec(prefix=f"{before}/{after}").prefix == "/"


@given(prefix_text)
def test_normalized_prefixes_stay_inside_the_repository(value: str) -> None:
    try:
        normalized = normalize_prefix(value)
    except ValueError:
        return
    if normalized != "/":
        assert not normalized.startswith("/")
        assert all(part not in {"", ".", ".."} for part in normalized.split("/"))
    if not any(char.isspace() for char in value):
        assert normalize_prefix(normalized) == normalized


def test_whitespace_after_leading_slashes_is_kept() -> None:
    # Trimming happens before the slashes are removed (perago 0.6): "/ a" is stored as " a",
    # so whitespace-bearing prefixes are not fixed points of the normalization.
    assert WorkspaceSpec(prefix="/ a").prefix == " a"
    assert WorkspaceSpec(prefix="/ .").prefix == " ."


@given(prefix_text)
def test_spec_construction_reports_prefix_errors_as_validation_errors(value: str) -> None:
    try:
        expected = normalize_prefix(value)
    except ValueError as error:
        with pytest.raises(ValidationError, match=f"Value error, {error}"):
            WorkspaceSpec(prefix=value)
    else:
        assert WorkspaceSpec(prefix=value).prefix == expected


@given(relative_prefix, st.sampled_from(["", ".", ".."]))
def test_segments_escaping_the_repository_are_refused(prefix: str, bad: str) -> None:
    with pytest.raises(ValidationError, match="must stay inside the repository"):
        WorkspaceSpec(prefix=f"{prefix}/{bad}")
