"""Change detection against the download manifest: only changed content is uploaded."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from perago.workspace.content_digest import new_digest
from perago.workspace.errors import WorkspaceContractError
from perago.workspace.keys import WorkspaceProjection
from perago.workspace.manifest import (
    Manifest,
    ManifestEntry,
    RemoteObject,
    ChangeSet,
    survey_changes,
)

PROJECTION = WorkspaceProjection("data")


def scan_changes(root: Path, manifest: Manifest, projection: WorkspaceProjection) -> ChangeSet:
    """The exact sync plan, every candidate confirmed as the upload threads confirm them."""
    survey = survey_changes(root, manifest, projection)
    return ChangeSet(uploads=tuple(u for u in survey.candidates if u.differs()), deletes=survey.deletes)


def digest_of_bytes(content: bytes) -> str:
    digest = new_digest()
    digest.update(content)
    return digest.hexdigest()


def downloaded(root: Path, files: dict[str, bytes], *, sealed_long_ago: bool = True) -> Manifest:
    """Write `files` the way a download does and return its manifest."""
    manifest = Manifest()
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        info = path.stat()
        manifest.add(
            ManifestEntry(
                relative=relative,
                remote=RemoteObject(
                    key=PROJECTION.object_key(relative),
                    size_bytes=len(content),
                    checksum="etag",
                    content_type="audio/wav",
                    metadata={"origin": "mixer"},
                ),
                digest=digest_of_bytes(content),
                size=len(content),
                inode=info.st_ino,
                ctime_ns=info.st_ctime_ns,
                mtime_ns=info.st_mtime_ns,
            )
        )
    manifest.seal()
    if sealed_long_ago:
        manifest.sealed_at_ns += 10**12  # every file is then "old": the stat shortcut applies
    return manifest


def test_untouched_workspace_has_no_changes(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"a.wav": b"aaa", "sub/b.wav": b"bbb"})
    changes = scan_changes(tmp_path, manifest, PROJECTION)
    assert not changes.changed


def test_one_modified_file_is_the_only_upload_and_keeps_its_content_type(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {f"f{i}.wav": b"x" * i for i in range(50)})
    (tmp_path / "f7.wav").write_bytes(b"changed")
    changes = scan_changes(tmp_path, manifest, PROJECTION)
    assert [u.key for u in changes.uploads] == ["data/f7.wav"]
    assert changes.uploads[0].content_type == "audio/wav"
    assert changes.uploads[0].metadata == {"origin": "mixer"}
    assert changes.deletes == ()


def test_new_and_deleted_files_become_uploads_and_deletes(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"keep.txt": b"k", "gone.txt": b"g"})
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "new" / "n.txt").parent.mkdir()
    (tmp_path / "new" / "n.txt").write_bytes(b"n")
    (tmp_path / "empty-dir").mkdir()
    changes = scan_changes(tmp_path, manifest, PROJECTION)
    assert [u.key for u in changes.uploads] == ["data/new/n.txt"]
    assert changes.uploads[0].content_type is None
    assert changes.deletes == ("data/gone.txt",)


def test_rewriting_identical_content_is_not_a_change(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"a.txt": b"same"})
    (tmp_path / "a.txt").unlink()
    (tmp_path / "a.txt").write_bytes(b"same")
    assert not scan_changes(tmp_path, manifest, PROJECTION).changed


def test_large_rewritten_files_are_compared_by_their_whole_content(tmp_path: Path) -> None:
    """Files spanning several read buffers: a rewrite with the same bytes is no change, one
    differing only in its last byte is."""
    size = (5 << 20) // 2 + 7  # 2.5 MiB and a ragged tail: three reads of a 1 MiB buffer
    originals = {f"big/{n}.bin": bytes([n]) * size for n in range(6)}
    manifest = downloaded(tmp_path, originals)
    for relative, content in originals.items():
        changed = relative == "big/3.bin"
        with open(tmp_path / relative, "r+b") as handle:
            handle.write(content[:-1] + (b"\xff" if changed else content[-1:]))
    changes = scan_changes(tmp_path, manifest, PROJECTION)
    assert [upload.relative for upload in changes.uploads] == ["big/3.bin"]


def test_copy2_that_restores_size_and_mtime_is_still_noticed(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"a.txt": b"AAAA"})
    other = tmp_path.parent / f"{tmp_path.name}-source"
    other.write_bytes(b"BBBB")
    info = (tmp_path / "a.txt").stat()
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    shutil.copy2(other, tmp_path / "a.txt")
    assert (tmp_path / "a.txt").stat().st_mtime_ns == info.st_mtime_ns
    changes = scan_changes(tmp_path, manifest, PROJECTION)
    assert [u.relative for u in changes.uploads] == ["a.txt"]


def test_a_same_size_rewrite_right_after_download_is_noticed(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"a.txt": b"AAAA"}, sealed_long_ago=False)
    with open(tmp_path / "a.txt", "r+b") as handle:
        handle.write(b"BBBB")
    changes = scan_changes(tmp_path, manifest, PROJECTION)
    assert [u.relative for u in changes.uploads] == ["a.txt"]


def test_symlinks_are_refused_naming_the_path_and_never_followed(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"a.txt": b"a"})
    (tmp_path / "sub").mkdir()
    os.symlink("/etc/passwd", tmp_path / "sub" / "link")
    with pytest.raises(WorkspaceContractError, match="symlinks: sub/link"):
        scan_changes(tmp_path, manifest, PROJECTION)


def test_fifos_are_refused_naming_the_path(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {})
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(WorkspaceContractError, match="fifos: pipe"):
        scan_changes(tmp_path, manifest, PROJECTION)


def test_local_case_collisions_are_refused(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {"Report.csv": b"r"})
    (tmp_path / "report.csv").write_bytes(b"x")
    with pytest.raises(WorkspaceContractError, match="differ only by case"):
        scan_changes(tmp_path, manifest, PROJECTION)


names = st.sampled_from([f"d{i % 3}/f{i}.bin" for i in range(12)])
contents = st.binary(min_size=0, max_size=8)


@settings(max_examples=40, deadline=None)
@given(
    initial=st.dictionaries(names, contents, max_size=10),
    edits=st.lists(st.tuples(st.sampled_from(["write", "delete"]), names, contents), max_size=10),
)
def test_sync_plan_is_exactly_the_difference_between_download_and_workspace(
    initial: dict[str, bytes], edits: list[tuple[str, str, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        manifest = downloaded(root, initial, sealed_long_ago=False)
        final = dict(initial)
        for action, name, content in edits:
            path = root / name
            if action == "write":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                final[name] = content
            elif name in final:
                path.unlink()
                del final[name]
        changes = scan_changes(root, manifest, PROJECTION)
        expected_uploads = sorted(
            PROJECTION.object_key(n) for n, c in final.items() if initial.get(n) != c
        )
        expected_deletes = sorted(PROJECTION.object_key(n) for n in initial if n not in final)
        assert [u.key for u in changes.uploads] == expected_uploads
        assert list(changes.deletes) == expected_deletes
        assert changes.changed == bool(expected_uploads or expected_deletes)


def test_file_names_that_cannot_be_object_keys_are_refused_terminally(tmp_path: Path) -> None:
    manifest = downloaded(tmp_path, {})
    with open(os.path.join(os.fsencode(tmp_path), b"bad-\xff.txt"), "wb") as handle:
        handle.write(b"x")
    with pytest.raises(WorkspaceContractError, match="not valid UTF-8"):
        scan_changes(tmp_path, manifest, PROJECTION)
    os.unlink(os.path.join(os.fsencode(tmp_path), b"bad-\xff.txt"))
    (tmp_path / "back\\slash.txt").write_bytes(b"x")
    with pytest.raises(WorkspaceContractError, match="backslash"):
        scan_changes(tmp_path, manifest, PROJECTION)


def test_coarse_timestamps_widen_the_racy_window() -> None:
    remote = RemoteObject(key="data/a", size_bytes=1, checksum="c")
    manifest = Manifest()
    for index in range(3):
        manifest.add(ManifestEntry(f"f{index}", remote, "h", 1, index, ctime_ns=5_000_000_000 + index * 10**9, mtime_ns=0))
    manifest.seal()
    manifest.sealed_at_ns = 8_500_000_000
    assert manifest.is_racy(manifest.entries["f2"]), "a write within 2 s of a 1 s-granular stamp is suspect"
    assert not manifest.is_racy(manifest.entries["f0"])
