"""Server, repository, branch, tag, commit, merge, reset, revert and protection endpoints."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from .errors import bad_request
from .listing import envelope, page_size
from .messages import (
    Request,
    Response,
    empty,
    field_bool,
    field_int,
    field_str,
    field_str_list,
    field_str_map,
    json_response,
    text,
)
from .model import Commit

if TYPE_CHECKING:
    from .server import App

NAMESPACE_REGEX = "^local://"
_NAMESPACE = re.compile(NAMESPACE_REGEX)


def _storage_config() -> dict:
    return {
        "blockstore_type": "local",
        "blockstore_namespace_example": "local://example-bucket/",
        "blockstore_namespace_ValidityRegex": NAMESPACE_REGEX,
        "default_namespace_prefix": "",
        "pre_sign_support": False,
        "pre_sign_support_ui": False,
        "import_support": False,
        "import_validity_regex": NAMESPACE_REGEX,
        "pre_sign_multipart_upload": False,
    }


def _version_config(app: "App") -> dict:
    return {"version": app.version, "version_context": "perago lakeFS emulator", "upgrade_recommended": False}


def get_config(app: "App", req: Request) -> Response:
    return json_response(200, {"version_config": _version_config(app), "storage_config": _storage_config()})


def get_version(app: "App", req: Request) -> Response:
    return json_response(200, _version_config(app))


def get_storage_config(app: "App", req: Request) -> Response:
    return json_response(200, _storage_config())


def healthcheck(app: "App", req: Request) -> Response:
    return empty(204)


def setup_state(app: "App", req: Request) -> Response:
    return json_response(200, {"state": "initialized", "comm_prefs_missing": False})


def current_user(app: "App", req: Request) -> Response:
    return json_response(200, {"user": {"id": req.user, "creation_date": app.started_at}})


# ---------------------------------------------------------------- repositories


def create_repository(app: "App", req: Request) -> Response:
    if req.flag("bare"):
        raise bad_request("bare: bare repositories are not supported by the emulator")
    body = req.json()
    namespace = field_str(body, "storage_namespace", required=True)
    assert namespace is not None
    if not _NAMESPACE.match(namespace):
        raise bad_request(f"storage_namespace: {namespace!r} does not match {NAMESPACE_REGEX} (blockstore type local)")
    repo = app.store.create_repository(
        body.get("name"),
        namespace,
        field_str(body, "default_branch", default="main"),
        field_bool(body, "read_only"),
        req.user,
    )
    return json_response(201, repo.to_json())


def get_repository(app: "App", req: Request, repository: str) -> Response:
    return json_response(200, app.store.get_repository(repository).to_json())


def list_repositories(app: "App", req: Request) -> Response:
    repos, has_more = app.store.list_repositories(req.arg("prefix"), req.arg("after"), page_size(req.arg("amount")))
    return json_response(200, envelope([r.to_json() for r in repos], has_more, lambda r: r["id"]))


def delete_repository(app: "App", req: Request, repository: str) -> Response:
    app.store.delete_repository(repository)
    return empty(204)


def get_repository_metadata(app: "App", req: Request, repository: str) -> Response:
    return json_response(200, app.store.repository_metadata(repository))


def set_repository_metadata(app: "App", req: Request, repository: str) -> Response:
    app.store.repository_metadata(repository, set_=field_str_map(req.json(), "metadata"))
    return empty(204)


def delete_repository_metadata(app: "App", req: Request, repository: str) -> Response:
    app.store.repository_metadata(repository, delete=tuple(field_str_list(req.json(), "keys")))
    return empty(204)


# ---------------------------------------------------------------- branches and tags


def create_branch(app: "App", req: Request, repository: str) -> Response:
    body = req.json()
    commit = app.store.create_branch(
        repository, body.get("name"), body.get("source"), field_bool(body, "hidden"), field_bool(body, "force")
    )
    return text(201, commit.id)


def get_branch(app: "App", req: Request, repository: str, branch: str) -> Response:
    found = app.store.get_branch(repository, branch)
    return json_response(200, {"id": found.name, "commit_id": found.head})


def list_branches(app: "App", req: Request, repository: str) -> Response:
    branches, has_more = app.store.list_branches(
        repository, req.arg("prefix"), req.arg("after"), page_size(req.arg("amount")), req.flag("show_hidden")
    )
    results = [{"id": b.name, "commit_id": b.head} for b in branches]
    return json_response(200, envelope(results, has_more, lambda r: r["id"]))


def delete_branch(app: "App", req: Request, repository: str, branch: str) -> Response:
    app.store.delete_branch(repository, branch, req.flag("force"))
    return empty(204)


def reset_branch(app: "App", req: Request, repository: str, branch: str) -> Response:
    body = req.json()
    app.store.reset_uncommitted(repository, branch, body.get("type"), body.get("path"), field_bool(body, "force"))
    return empty(204)


def hard_reset_branch(app: "App", req: Request, repository: str, branch: str) -> Response:
    app.store.hard_reset(repository, branch, req.required("ref"), req.flag("force"))
    return empty(204)


def create_tag(app: "App", req: Request, repository: str) -> Response:
    body = req.json()
    commit = app.store.create_tag(repository, body.get("id"), body.get("ref"), field_bool(body, "force"))
    return json_response(201, {"id": body["id"], "commit_id": commit.id})


def get_tag(app: "App", req: Request, repository: str, tag: str) -> Response:
    return json_response(200, {"id": tag, "commit_id": app.store.get_tag(repository, tag)})


def list_tags(app: "App", req: Request, repository: str) -> Response:
    tags, has_more = app.store.list_tags(repository, req.arg("prefix"), req.arg("after"), page_size(req.arg("amount")))
    results = [{"id": name, "commit_id": cid} for name, cid in tags]
    return json_response(200, envelope(results, has_more, lambda r: r["id"]))


def delete_tag(app: "App", req: Request, repository: str, tag: str) -> Response:
    app.store.delete_tag(repository, tag, req.flag("force"))
    return empty(204)


# ---------------------------------------------------------------- commits, log, merge, revert


def commit(app: "App", req: Request, repository: str, branch: str) -> Response:
    body = req.json()
    message = field_str(body, "message", required=True)
    assert message is not None
    created = app.store.commit(
        repository,
        branch,
        message,
        field_str_map(body, "metadata"),
        field_int(body, "date"),
        field_bool(body, "allow_empty"),
        field_bool(body, "force"),
        req.user,
    )
    return json_response(201, created.to_json())


def get_commit(app: "App", req: Request, repository: str, commit_id: str) -> Response:
    return json_response(200, app.store.get_commit(repository, commit_id).to_json())


def log_commits(app: "App", req: Request, repository: str, ref: str) -> Response:
    amount = page_size(req.arg("amount"))
    after = req.arg("after")
    limit = req.flag("limit")
    commits = app.store.log(
        repository, ref, req.flag("first_parent"), req.args("objects"), req.args("prefixes"), req.arg("stop_at") or None
    )
    page: list[Commit] = []
    has_more = False
    skipping = bool(after)
    for found in commits:
        if skipping:
            skipping = found.id != after
            continue
        if len(page) == amount:
            has_more = not limit
            break
        page.append(found)
    return json_response(200, envelope([c.to_json() for c in page], has_more, lambda r: r["id"]))


def merge_into_branch(app: "App", req: Request, repository: str, source_ref: str, destination_branch: str) -> Response:
    body = req.json()
    merged = app.store.merge(
        repository,
        source_ref,
        destination_branch,
        field_str(body, "message"),
        field_str_map(body, "metadata"),
        field_str(body, "strategy") or None,
        field_bool(body, "force"),
        field_bool(body, "allow_empty"),
        field_bool(body, "squash_merge"),
        req.user,
    )
    return json_response(200, {"reference": merged.id})


def find_merge_base(app: "App", req: Request, repository: str, source_ref: str, destination_branch: str) -> Response:
    source, destination, base = app.store.find_merge_base(repository, source_ref, destination_branch)
    return json_response(
        200,
        {"source_commit_id": source.id, "destination_commit_id": destination.id, "base_commit_id": base.id},
    )


def revert_branch(app: "App", req: Request, repository: str, branch: str) -> Response:
    body = req.json()
    ref = field_str(body, "ref", required=True)
    parent_number = field_int(body, "parent_number")
    if parent_number is None:
        raise bad_request("parent_number: required value")
    overrides = body.get("commit_overrides") or {}
    if not isinstance(overrides, dict):
        raise bad_request("commit_overrides: must be an object")
    assert ref is not None
    app.store.revert(
        repository,
        branch,
        ref,
        parent_number,
        field_bool(body, "allow_empty"),
        field_bool(body, "force"),
        field_str(overrides, "message"),
        field_str_map(overrides, "metadata"),
        req.user,
    )
    return empty(204)


def cherry_pick(app: "App", req: Request, repository: str, branch: str) -> Response:
    body = req.json()
    ref = field_str(body, "ref", required=True)
    overrides = body.get("commit_overrides") or {}
    if not isinstance(overrides, dict):
        raise bad_request("commit_overrides: must be an object")
    assert ref is not None
    picked = app.store.cherry_pick(
        repository,
        branch,
        ref,
        field_int(body, "parent_number"),
        field_bool(body, "force"),
        field_str(overrides, "message"),
        field_str_map(overrides, "metadata") if "metadata" in overrides else None,
        req.user,
    )
    return json_response(201, picked.to_json())


# ---------------------------------------------------------------- branch protection


def get_protection(app: "App", req: Request, repository: str) -> Response:
    patterns, etag = app.store.protection(repository)
    return json_response(200, [{"pattern": p} for p in patterns], {"ETag": etag})


def set_protection(app: "App", req: Request, repository: str) -> Response:
    raw = req.body.read_all(1 << 20)
    try:
        rules = json.loads(raw or b"[]")
    except ValueError:
        raise bad_request("request body must be a JSON list of {\"pattern\": ...} rules") from None
    if not isinstance(rules, list) or not all(
        isinstance(r, dict) and isinstance(r.get("pattern"), str) and r["pattern"] for r in rules
    ):
        raise bad_request("request body must be a JSON list of {\"pattern\": <non-empty string>} rules")
    app.store.set_protection(repository, [r["pattern"] for r in rules], req.headers.get("if-match"))
    return empty(204)


def add_protection_rule(app: "App", req: Request, repository: str) -> Response:
    pattern = field_str(req.json(), "pattern", required=True)
    if not pattern:
        raise bad_request("pattern: required value")
    app.store.add_protection(repository, pattern)
    return empty(204)


def delete_protection_rule(app: "App", req: Request, repository: str) -> Response:
    pattern = field_str(req.json(), "pattern", required=True)
    assert pattern is not None
    app.store.remove_protection(repository, pattern)
    return empty(204)
