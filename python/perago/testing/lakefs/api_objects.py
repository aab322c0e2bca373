"""Object endpoints: upload (raw, chunked, multipart), read with ranges, stat, list, delete, copy."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Optional

from .bodies import MultipartStream, header_params
from .errors import ApiError, bad_request
from .listing import MAX_PER_PAGE, envelope, page_size
from .messages import Request, Response, empty, field_str, field_str_list, json_response
from .model import Entry

if TYPE_CHECKING:
    from .server import App

DEFAULT_CONTENT_TYPE = "application/octet-stream"
META_HEADER = "x-lakefs-meta-"
INTERNAL_HEADER = "x-lakefs-internal-"
INTERNAL_KEY = "::lakefs::"


def object_stats(app: "App", path: str, entry: Entry, user_metadata: bool = True) -> dict:
    stats = {
        "path": path,
        "path_type": "object",
        "physical_address": app.physical_address(entry),
        "checksum": entry.checksum,
        "size_bytes": entry.size,
        "mtime": entry.mtime,
        "content_type": entry.content_type,
    }
    if user_metadata:
        stats["metadata"] = dict(entry.metadata)
    return stats


def _user_metadata(req: Request) -> tuple[tuple[str, str], ...]:
    found = {}
    for name, value in req.headers.items():
        if name.startswith(META_HEADER) and len(name) > len(META_HEADER):
            found[name[len(META_HEADER):]] = value
        elif name.startswith(INTERNAL_HEADER) and len(name) > len(INTERNAL_HEADER):
            found[INTERNAL_KEY + name[len(INTERNAL_HEADER):]] = value
    return tuple(sorted(found.items()))


def _presign_refused(req: Request) -> None:
    if req.flag("presign"):
        raise bad_request("presign: pre-signed URLs are not supported by this server (pre_sign_support is false)")


def upload_object(app: "App", req: Request, repository: str, branch: str) -> Response:
    path = req.required("path")
    force = req.flag("force")
    if_none_match = req.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise bad_request("If-None-Match: only '*' is supported")
    app.store.check_object_write(repository, branch, force)
    content_type = req.headers.get("content-type") or DEFAULT_CONTENT_TYPE
    kind, params = header_params(content_type)
    if kind == "multipart/form-data":
        stream = MultipartStream(req.body, params.get("boundary", ""))
        blob = None
        while (part := stream.next_part()) is not None:
            if part.name == "content" and blob is None:
                blob = app.blobs.ingest(part.readinto)
                content_type = part.content_type or DEFAULT_CONTENT_TYPE
        if blob is None:
            raise bad_request("content: multipart body has no part named 'content'")
    else:
        blob = app.blobs.ingest(req.body.readinto)
    entry = Entry(blob.address, blob.checksum, blob.size, int(time.time()), content_type, _user_metadata(req))
    app.store.put_object(
        repository, branch, path, entry, force, if_none_match=if_none_match, if_match=req.headers.get("if-match")
    )
    return json_response(201, object_stats(app, path, entry))


def _parse_range(header: str, size: int) -> Optional[tuple[int, int]]:
    """Inclusive (start, end) of a single `bytes=` range; None when it cannot be satisfied."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise bad_request(f"Range: unsupported value {header!r} (one bytes=start-end range)")
    first, dash, last = spec.strip().partition("-")
    try:
        if not dash:
            raise ValueError
        if first == "":
            suffix = int(last)
            if suffix <= 0 or size == 0:
                return None
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise bad_request(f"Range: malformed value {header!r}") from None
    if start < 0 or start >= size or end < start:
        return None
    return start, min(end, size - 1)


def get_object(app: "App", req: Request, repository: str, ref: str) -> Response:
    path = req.required("path")
    _presign_refused(req)
    entry = app.store.stat(repository, ref, path)
    etag = f'"{entry.checksum}"'
    headers = {
        "ETag": etag,
        "Last-Modified": formatdate(entry.mtime, usegmt=True),
        "Content-Type": entry.content_type,
        "Accept-Ranges": "bytes",
    }
    if_none_match = req.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() in (etag, entry.checksum, "*"):
        return Response(304, headers={"ETag": etag})
    blob_path = app.blobs.path(entry.address)
    if not blob_path.is_file():
        raise ApiError(410, "No data")  # the object's data was removed from the data directory
    range_header = req.headers.get("range")
    if range_header is None or req.method == "HEAD":
        return Response(200, headers=headers, file=(blob_path, 0, entry.size))
    span = _parse_range(range_header, entry.size)
    if span is None:
        return Response(
            416,
            b'{"message":"Requested Range Not Satisfiable"}',
            {"Content-Type": "application/json", "Content-Range": f"bytes */{entry.size}"},
        )
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
    return Response(206, headers=headers, file=(blob_path, start, end - start + 1))


def stat_object(app: "App", req: Request, repository: str, ref: str) -> Response:
    path = req.required("path")
    _presign_refused(req)
    entry = app.store.stat(repository, ref, path)
    return json_response(200, object_stats(app, path, entry, req.flag("user_metadata", True)))


def list_objects(app: "App", req: Request, repository: str, ref: str) -> Response:
    _presign_refused(req)
    with_metadata = req.flag("user_metadata", True)
    page, has_more = app.store.list_objects(
        repository, ref, req.arg("prefix"), req.arg("after"), req.arg("delimiter"), page_size(req.arg("amount"))
    )
    results = []
    for path, entry in page:
        if entry is None:
            results.append({"path": path, "path_type": "common_prefix", "physical_address": "", "checksum": "", "mtime": 0})
        else:
            results.append(object_stats(app, path, entry, with_metadata))
    return json_response(200, envelope(results, has_more, lambda r: r["path"]))


def delete_object(app: "App", req: Request, repository: str, branch: str) -> Response:
    path = req.required("path")
    app.store.delete_objects(repository, branch, [path], req.flag("force"))
    return empty(204)


def delete_objects(app: "App", req: Request, repository: str, branch: str) -> Response:
    paths = field_str_list(req.json(), "paths")
    if len(paths) > MAX_PER_PAGE:
        raise bad_request(f"paths: at most {MAX_PER_PAGE} paths per request, got {len(paths)}")
    errors = [{"status_code": 400, "message": "path: required value", "path": p} for p in paths if not p]
    app.store.delete_objects(repository, branch, [p for p in paths if p], req.flag("force"))
    return json_response(200, {"errors": errors})


def copy_object(app: "App", req: Request, repository: str, branch: str) -> Response:
    dest_path = req.required("dest_path")
    body = req.json()
    src_path = field_str(body, "src_path", required=True)
    src_ref = field_str(body, "src_ref") or branch
    assert src_path is not None
    entry = app.store.copy_object(repository, branch, dest_path, src_ref, src_path, int(time.time()), req.flag("force"))
    return json_response(201, object_stats(app, dest_path, entry))


def _diff_results(changes: list[tuple[str, str, Optional[Entry]]], req: Request) -> Response:
    prefix, after, delimiter = req.arg("prefix"), req.arg("after"), req.arg("delimiter")
    amount = page_size(req.arg("amount"))
    results: list[dict] = []
    has_more = False
    last_common = None
    for path, kind, entry in changes:
        if not path.startswith(prefix) or (after and path <= after):
            continue
        if delimiter:
            cut = path.find(delimiter, len(prefix))
            if cut != -1:
                common = path[: cut + len(delimiter)]
                if common == last_common or (after and common <= after):
                    continue
                last_common = common
                if len(results) == amount:
                    has_more = True
                    break
                results.append({"type": "changed", "path": common, "path_type": "common_prefix"})
                continue
        if len(results) == amount:
            has_more = True
            break
        item = {"type": kind, "path": path, "path_type": "object"}
        if entry is not None:
            item["size_bytes"] = entry.size
        results.append(item)
    return json_response(200, envelope(results, has_more, lambda r: r["path"]))


def diff_branch(app: "App", req: Request, repository: str, branch: str) -> Response:
    return _diff_results(app.store.diff_uncommitted(repository, branch), req)


def diff_refs(app: "App", req: Request, repository: str, left: str, right: str) -> Response:
    changes = app.store.diff_refs(repository, left, right, req.arg("type", "three_dot"))
    return _diff_results(changes, req)
