"""The mapping between lakeFS object keys under the workspace prefix and local paths.

One rule (spec §1.6) decides whether a string is a safe workspace-relative path; the
projection applies it to both directions. Anything that could escape the attempt
workspace (`..`, absolute, drive-qualified, backslashes, NUL) is refused with a
`WorkspaceContractError` naming the key, because the same key fails every retry (W-10,
W-12). Keys that differ only by case or Unicode normalization, and keys that would need
`x` to be both a file and a directory, are refused too: on a case-insensitive or
normalizing filesystem they collapse into one file and the next publication would delete
the other key (W-11).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from perago.workspace.errors import WorkspaceContractError

MARKER_NAME = ".perago-attempt.json"
"""perago 0.6's attempt marker: never materialized from lakeFS, never uploaded, never deleted."""

_DRIVE = re.compile(r"^[A-Za-z]:")
_NAME_MAX_BYTES = 255


def path_problem(value: str) -> str | None:
    """Why `value` is not a safe workspace-relative POSIX path, or None when it is."""
    if value == "":
        return "is empty"
    if "\x00" in value:
        return "contains a NUL character"
    if "\\" in value:
        return "contains a backslash"
    if value.startswith("/"):
        return "is absolute"
    if _DRIVE.match(value):
        return "starts with a drive letter"
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            return "has an empty, '.' or '..' segment"
        try:
            encoded = segment.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid UTF-8"
        if len(encoded) > _NAME_MAX_BYTES:
            return f"has a segment longer than {_NAME_MAX_BYTES} bytes"
    return None


def object_prefix(spec_prefix: str) -> str:
    """The key prefix `P` of a normalized `WorkspaceSpec.prefix`: "" for the root."""
    return "" if spec_prefix == "/" else spec_prefix


@dataclass(frozen=True)
class WorkspaceProjection:
    """The keys under `P + "/"` seen as files of the attempt workspace."""

    prefix: str  # P: "" or a normalized prefix without trailing slash

    @classmethod
    def for_spec_prefix(cls, spec_prefix: str) -> WorkspaceProjection:
        return cls(object_prefix(spec_prefix))

    @property
    def listing_prefix(self) -> str:
        """List with the trailing slash so sibling prefixes (`render2/`) are never scanned."""
        return f"{self.prefix}/" if self.prefix else ""

    def relative_path(self, key: str, size_bytes: int) -> str | None:
        """Local relative path of a listed key; None for keys deliberately not materialized.

        Skipped: zero-byte directory markers (`dir/`) and perago's marker name. Raises
        `WorkspaceContractError` for any other key that cannot be a local file.
        """
        listing = self.listing_prefix
        if not key.startswith(listing):
            raise WorkspaceContractError(
                f"lakeFS object key {key!r} is outside the workspace prefix {listing!r}"
            )
        relative = key[len(listing) :]
        if relative.endswith("/") and size_bytes == 0:
            return None
        problem = path_problem(relative)
        if problem is not None:
            raise WorkspaceContractError(
                f"lakeFS object key {key!r} cannot be a workspace file: its path {problem}"
            )
        if relative.rsplit("/", 1)[-1] == MARKER_NAME:
            return None
        return relative

    def object_key(self, relative: str) -> str:
        """Object key of a local relative path; refuses paths that are not safe."""
        problem = path_problem(relative)
        if problem is not None:
            raise WorkspaceContractError(
                f"workspace file {relative!r} cannot be published: its path {problem}"
            )
        return f"{self.prefix}/{relative}" if self.prefix else relative


def fold(path: str) -> str:
    """The name a case-insensitive, normalizing filesystem would see."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


def check_collisions(paths: Iterable[str], *, what: str = "workspace paths") -> None:
    """Refuse paths that collapse into one another on a case-insensitive or normalizing filesystem.

    Also refuses a path that is both a file and the parent directory of another path.
    """
    seen: dict[str, str] = {}
    folded_files: dict[str, str] = {}
    for path in paths:
        folded = fold(path)
        other = seen.get(folded)
        if other is not None:
            raise WorkspaceContractError(
                f"{what} {other!r} and {path!r} differ only by case or Unicode normalization"
            )
        seen[folded] = path
        folded_files[folded] = path
    for folded, path in folded_files.items():
        parts = folded.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            clash = folded_files.get(parent)
            if clash is not None:
                raise WorkspaceContractError(
                    f"{what} {clash!r} would have to be both a file and the directory of {path!r}"
                )
