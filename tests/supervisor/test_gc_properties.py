"""GC over arbitrary workspace roots (hypothesis): a pass never fails, removes exactly the
attempt directories it may, and never touches anything else — nor follows a symlink."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from perago import _core

VALID_META = {
    "owner_worker_id": "w0001",
    "owner_pid": 4242,
    "owner_token": "t",
    "execution_id": "e",
    "started_at": "2020-01-01T00:00:00+00:00",
}
META_VARIANTS = {
    "valid": json.dumps(VALID_META),
    "live_owner": json.dumps({**VALID_META, "owner_pid": os.getpid()}),
    "garbage": "{not json",
    "array": "[1, 2]",
    "missing_pid": json.dumps(
        {k: v for k, v in VALID_META.items() if k != "owner_pid"}
    ),
    "absent": None,
}
ENTRY_KINDS = [
    "attempt",
    "attempt_file",
    "attempt_symlink",
    "foreign_dir",
    "foreign_file",
]

entries = st.lists(
    st.tuples(
        st.sampled_from(ENTRY_KINDS),
        st.sampled_from(sorted(META_VARIANTS)),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(entries)
def test_a_pass_removes_exactly_the_abandoned_attempts(
    layout: list[tuple[str, str, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as base:
        root, outside = Path(base) / "root", Path(base) / "outside"
        root.mkdir()
        outside.mkdir()
        (outside / "precious").write_text("x")
        expected_removed, expected_kept = set(), set()
        for index, (kind, meta, read_only_inside) in enumerate(layout):
            if kind == "attempt":
                path = root / f"task_id=t{index}-exec=e{index}"
                (path / "ws" / "sub").mkdir(parents=True)
                (path / "ws" / "sub" / "f").write_text("data")
                if META_VARIANTS[meta] is not None:
                    (path / "meta.json").write_text(META_VARIANTS[meta])
                if read_only_inside:
                    (path / "ws" / "sub").chmod(0o500)
                (expected_kept if meta == "live_owner" else expected_removed).add(path)
            elif kind == "attempt_file":
                path = root / f"task_id=file{index}"
                path.write_text("not a directory")
                expected_kept.add(path)
            elif kind == "attempt_symlink":
                path = root / f"task_id=link{index}"
                path.symlink_to(outside)
                expected_kept.add(path)
            elif kind == "foreign_dir":
                path = root / f"other{index}"
                path.mkdir()
                (path / "meta.json").write_text(json.dumps(VALID_META))
                expected_kept.add(path)
            else:
                path = root / f"notes{index}.txt"
                path.write_text("keep")
                expected_kept.add(path)

        removed = _core.collect_attempt_workspaces(
            root, active_owners={("w0001", os.getpid())}
        )

        assert set(removed) == expected_removed
        assert all(not path.exists() for path in expected_removed)
        assert all(path.is_symlink() or path.exists() for path in expected_kept)
        assert (outside / "precious").read_text() == "x"
