"""Guardrail path rules (properties over generated paths) and runtime checks.

The exact 0.6.1 outcomes for the spec's example paths are in test_oracle_cases; here
the rules are checked over many generated inputs.
"""

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from perago import (
    GuardrailViolation,
    PostGuardrailViolation,
    PreGuardrailViolation,
    TaskDefinitionError,
    check_guardrails,
    forbid_glob,
    require_dir,
    require_file,
    require_glob,
)
from perago.guards import canonical_guardrail_path

DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")

segment_text = st.text(
    alphabet=st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)), min_size=1, max_size=8
)
safe_segment = segment_text.filter(lambda s: s not in {".", ".."})
safe_segments = st.lists(safe_segment, min_size=1, max_size=5).filter(lambda parts: not DRIVE_PREFIX.match(parts[0]))
any_path_text = st.text(alphabet=st.sampled_from(["a", "b", ".", "/", "\\", ":", " ", "C", "*"]), max_size=12)


@given(safe_segments)
def test_relative_strings_are_kept_verbatim(segments: list[str]) -> None:
    path = "/".join(segments)
    assert canonical_guardrail_path(path) == path
    assert require_file(path).path == path
    assert forbid_glob(path).label() == f"forbid_glob('{path}')"


@given(safe_segments)
def test_pure_posix_paths_join_their_parts(segments: list[str]) -> None:
    path = PurePosixPath(*segments)
    assert canonical_guardrail_path(path) == "/".join(path.parts)


@given(st.lists(st.sampled_from(["a", "b", "raw", "x.wav", "*"]), min_size=1, max_size=5))
def test_windows_relative_paths_use_forward_slashes(segments: list[str]) -> None:
    assert canonical_guardrail_path(PureWindowsPath("\\".join(segments))) == "/".join(segments)


@given(any_path_text)
def test_canonical_paths_never_escape_the_workspace(text: str) -> None:
    try:
        canonical = canonical_guardrail_path(text)
    except TaskDefinitionError:
        return
    segments = canonical.split("/")
    assert not canonical.startswith("/")
    assert "\\" not in canonical
    assert not DRIVE_PREFIX.match(canonical)
    assert all(segment not in {"", ".", ".."} for segment in segments)
    assert canonical_guardrail_path(canonical) == canonical


@given(safe_segments, st.sampled_from(["", ".", ".."]), st.integers(min_value=0, max_value=5))
def test_empty_dot_and_parent_segments_are_refused(segments: list[str], bad: str, position: int) -> None:
    # An empty first segment would be a leading "/", which is refused as absolute instead.
    position = min(position, len(segments)) if bad else max(1, min(position, len(segments)))
    path = "/".join([*segments[:position], bad, *segments[position:]])
    with pytest.raises(TaskDefinitionError, match=r"must be relative and must not contain '\.\.'"):
        canonical_guardrail_path(path)


@given(any_path_text)
def test_backslashes_and_roots_are_refused_in_that_order(text: str) -> None:
    assume("\\" in text or text.startswith("/"))
    expected = "must use '/' separators" if "\\" in text else "relative to WorkspaceSpec"
    with pytest.raises(TaskDefinitionError, match=re.escape(expected)):
        canonical_guardrail_path(text)


def test_path_errors_are_bare_definition_errors_at_the_call_site() -> None:
    with pytest.raises(TaskDefinitionError) as raised:
        require_dir("../up")
    assert type(raised.value) is TaskDefinitionError


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    for name in ("raw/a.wav", "raw/b.wav", "raw/deep/c.wav", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".perago-attempt.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize(
    ("phase", "error"),
    [("pre", PreGuardrailViolation), ("post", PostGuardrailViolation), ("custom", GuardrailViolation)],
)
def test_phase_selects_the_violation_type(workspace: Path, phase: str, error: type) -> None:
    with pytest.raises(error) as raised:
        check_guardrails(workspace, [require_dir("stems")], phase)
    assert type(raised.value) is error
    assert str(raised.value) == f"{phase} guardrail require_dir('stems') did not find a directory"


@pytest.fixture(scope="module")
def three_wavs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("three-wavs")
    for name in ("a.wav", "b.wav", "c.wav", "d.txt"):
        (root / name).write_bytes(b"")
    return root


@given(min_count=st.integers(min_value=0, max_value=5), max_count=st.one_of(st.none(), st.integers(0, 5)))
def test_require_glob_holds_exactly_within_bounds(three_wavs: Path, min_count: int, max_count: int | None) -> None:
    assume(max_count is None or min_count <= max_count)
    root, count = three_wavs, 3
    guardrail = require_glob("*.wav", min_count=min_count, max_count=max_count)
    within = min_count <= count and (max_count is None or count <= max_count)
    if within:
        check_guardrails(root, [guardrail], "post")
        return
    bound = f"min_count={min_count}" if count < min_count else f"max_count={max_count}"
    with pytest.raises(PostGuardrailViolation) as raised:
        check_guardrails(root, [guardrail], "post")
    assert str(raised.value) == f"post guardrail require_glob('*.wav') matched {count} files; {bound}"


def test_marker_file_is_counted_by_globs(workspace: Path) -> None:
    with pytest.raises(PreGuardrailViolation, match=r"forbid_glob\('\*\.json'\) matched 1 files$"):
        check_guardrails(workspace, [forbid_glob("*.json")], "pre")


def test_recursive_glob_counts_files_and_directories(workspace: Path) -> None:
    check_guardrails(workspace, [require_glob("raw/**", min_count=2, max_count=2)], "pre")
    check_guardrails(workspace, [require_glob("raw/**/*", min_count=4, max_count=4)], "pre")


def test_first_failure_stops_evaluation(workspace: Path) -> None:
    guardrails = [require_file("notes.txt"), require_file("missing"), require_dir("also-missing")]
    with pytest.raises(PreGuardrailViolation, match=r"require_file\('missing'\)"):
        check_guardrails(workspace, guardrails, "pre")
