"""Objects: uploads in every framing, reads with ranges, stat, listing, deletes, staging views."""

from __future__ import annotations

import hashlib
import io
import json
import os

import lakefs
import lakefs_sdk
import pytest
import urllib3
from lakefs_sdk.client import LakeFSClient
from lakefs_helpers import api_error, commit, read, upload

from perago.testing import LakeFSEmulator


def auth_headers(emulator: LakeFSEmulator) -> dict[str, str]:
    return urllib3.make_headers(basic_auth=f"{emulator.access_key_id}:{emulator.secret_access_key}")


def test_multipart_upload_stats_and_reads_back(sdk: LakeFSClient, repo_name: str) -> None:
    content = os.urandom(200_000)
    stats = upload(sdk, repo_name, "main", "dir/file.bin", content)
    assert stats.path == "dir/file.bin" and stats.path_type == "object"
    assert stats.size_bytes == len(content)
    assert stats.checksum == hashlib.md5(content).hexdigest()
    assert read(sdk, repo_name, "main", "dir/file.bin") == content
    stat = sdk.objects_api.stat_object(repo_name, "main", "dir/file.bin")
    assert (stat.checksum, stat.size_bytes, stat.physical_address) == (stats.checksum, len(content), stats.physical_address)


def test_raw_and_chunked_uploads_keep_content_type_and_metadata(emulator: LakeFSEmulator, repo: lakefs.Repository) -> None:
    branch = repo.branch("main")
    branch.object("raw.json").upload(b'{"a": 1}', content_type="application/json", metadata={"origin": "test"})
    stat = branch.object("raw.json").stat()
    assert stat.content_type == "application/json" and stat.metadata == {"origin": "test"}
    # a file-like body goes out with Transfer-Encoding: chunked
    pool = urllib3.PoolManager()
    url = f"{emulator.api_url}/repositories/{repo.id}/branches/main/objects?path=chunked.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    response = pool.request("POST", url, body=io.BytesIO(payload), chunked=True,
                            headers={**auth_headers(emulator), "Content-Type": "application/x-custom", "X-Lakefs-Meta-Kind": "k"})
    assert response.status == 201, response.data
    assert json.loads(response.data)["size_bytes"] == len(payload)
    with branch.object("chunked.bin").reader() as reader:
        assert reader.read() == payload
    chunked = branch.object("chunked.bin").stat()
    assert (chunked.content_type, chunked.metadata) == ("application/x-custom", {"kind": "k"})


def test_high_level_writer_and_reader_round_trip_large_object(repo: lakefs.Repository) -> None:
    payload = os.urandom(1_000_000)
    obj = repo.branch("main").object("big/blob")
    with obj.writer("wb") as writer:
        writer.write(payload[:400_000])
        writer.write(payload[400_000:])
    with obj.reader("rb") as reader:
        assert reader.read(65536) == payload[:65536]  # ranged read
        reader.seek(999_990)
        assert reader.read() == payload[999_990:]
    assert obj.reader().read() == payload
    assert obj.exists() and not repo.branch("main").object("big/nope").exists()


def test_exclusive_create_refuses_existing_object(repo: lakefs.Repository) -> None:
    obj = repo.branch("main").object("once")
    obj.upload(b"1", mode="x")
    with pytest.raises(lakefs.exceptions.ObjectExistsException):
        obj.upload(b"2", mode="x")
    assert obj.reader().read() == b"1"


def test_if_match_upload_precondition(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    stats = upload(sdk, repo_name, "main", "f", b"v1")
    url = f"{emulator.api_url}/repositories/{repo_name}/branches/main/objects?path=f"
    pool = urllib3.PoolManager()
    stale = pool.request("POST", url, body=b"v2", headers={**auth_headers(emulator), "If-Match": '"0000"'})
    assert stale.status == 412
    fresh = pool.request("POST", url, body=b"v2", headers={**auth_headers(emulator), "If-Match": f'"{stats.checksum}"'})
    assert fresh.status == 201
    assert read(sdk, repo_name, "main", "f") == b"v2"


def test_ranged_reads_answer_206_and_416(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "r", b"0123456789")
    upload(sdk, repo_name, "main", "empty", b"")
    pool = urllib3.PoolManager()
    base = f"{emulator.api_url}/repositories/{repo_name}/refs/main/objects?path="

    def get(path: str, rng: str | None) -> urllib3.BaseHTTPResponse:
        headers = dict(auth_headers(emulator))
        if rng:
            headers["Range"] = rng
        return pool.request("GET", base + path, headers=headers)

    full = get("r", None)
    assert full.status == 200 and full.data == b"0123456789"
    assert full.headers["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert full.headers["Content-Length"] == "10" and "Last-Modified" in full.headers
    part = get("r", "bytes=2-4")
    assert (part.status, part.data, part.headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert get("r", "bytes=7-").data == b"789"
    assert get("r", "bytes=8-100").headers["Content-Range"] == "bytes 8-9/10"
    assert get("r", "bytes=-3").data == b"789"
    beyond = get("r", "bytes=10-20")
    assert beyond.status == 416 and beyond.headers["Content-Range"] == "bytes */10"
    assert get("empty", "bytes=0-").status == 416
    assert get("empty", None).data == b""
    assert sdk.objects_api.get_object(repo_name, "main", "r", range="bytes=0-0") == bytearray(b"0")
    not_modified = pool.request("GET", base + "r", headers={**auth_headers(emulator), "If-None-Match": full.headers["ETag"]})
    assert not_modified.status == 304


def test_head_and_missing_objects(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "here", b"abc")
    sdk.objects_api.head_object(repo_name, "main", "here")
    api_error(404, sdk.objects_api.head_object, repo_name, "main", "missing")
    error = api_error(404, sdk.objects_api.get_object, repo_name, "main", "missing")
    assert "message" in json.loads(error.body)
    api_error(404, sdk.objects_api.stat_object, repo_name, "main", "missing")
    api_error(404, sdk.objects_api.get_object, repo_name, "nobranch", "here")
    api_error(404, sdk.objects_api.upload_object, repo_name, "nobranch", "x", content=b"1")
    with pytest.raises(lakefs.exceptions.ObjectNotFoundException):
        lakefs.Repository(repo_name, client=lakefs.Client(host=emulator.url, username=emulator.access_key_id,
                                                         password=emulator.secret_access_key)).ref("main").object("missing").reader().read()


def test_list_objects_prefix_is_a_plain_string_prefix(sdk: LakeFSClient, repo_name: str) -> None:
    for path in ["audio/render/a.wav", "audio/render2/b.wav", "audio/rendering.txt", "audio/other.wav", "zzz"]:
        upload(sdk, repo_name, "main", path, b"x")
    listed = sdk.objects_api.list_objects(repo_name, "main", prefix="audio/render")
    assert [r.path for r in listed.results] == ["audio/render/a.wav", "audio/render2/b.wav", "audio/rendering.txt"]
    listed = sdk.objects_api.list_objects(repo_name, "main", prefix="audio/render/")
    assert [r.path for r in listed.results] == ["audio/render/a.wav"]


def test_list_objects_with_delimiter_groups_common_prefixes(sdk: LakeFSClient, repo_name: str) -> None:
    for path in ["a/1", "a/2", "b/c/1", "b/d", "top", "a.txt"]:
        upload(sdk, repo_name, "main", path, b"x")
    listed = sdk.objects_api.list_objects(repo_name, "main", delimiter="/")
    assert [(r.path, r.path_type) for r in listed.results] == [
        ("a.txt", "object"), ("a/", "common_prefix"), ("b/", "common_prefix"), ("top", "object")]
    listed = sdk.objects_api.list_objects(repo_name, "main", prefix="b/", delimiter="/")
    assert [(r.path, r.path_type) for r in listed.results] == [("b/c/", "common_prefix"), ("b/d", "object")]
    page = sdk.objects_api.list_objects(repo_name, "main", delimiter="/", amount=2)
    assert [r.path for r in page.results] == ["a.txt", "a/"] and page.pagination.next_offset == "a/"
    page = sdk.objects_api.list_objects(repo_name, "main", delimiter="/", amount=2, after="a/")
    assert [r.path for r in page.results] == ["b/", "top"] and not page.pagination.has_more


def test_list_objects_pages_default_100_cap_1000(
    emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str, repo: lakefs.Repository
) -> None:
    paths = sorted(f"k/{i:04d}" for i in range(1005))
    for i, path in enumerate(paths):
        repo.branch("main").object(path).upload(str(i).encode())
    first = sdk.objects_api.list_objects(repo_name, "main")
    assert len(first.results) == 100 and first.pagination.has_more
    assert first.pagination.next_offset == paths[99] and first.pagination.results == 100
    big = sdk.objects_api.list_objects(repo_name, "main", amount=1000)
    assert len(big.results) == 1000 and big.pagination.next_offset == paths[999]
    rest = sdk.objects_api.list_objects(repo_name, "main", amount=1000, after=big.pagination.next_offset)
    assert [r.path for r in rest.results] == paths[1000:] and not rest.pagination.has_more
    # the SDK refuses out-of-range amounts itself; the server clamps what other clients send
    url = f"{emulator.api_url}/repositories/{repo_name}/refs/main/objects/ls?amount="
    for amount, expected in (("5000", 1000), ("0", 100), ("-3", 100)):
        response = urllib3.request("GET", url + amount, headers=auth_headers(emulator))
        assert len(json.loads(response.data)["results"]) == expected
    assert [o.path for o in repo.ref("main").objects(prefix="k/")] == paths  # the high-level iterator follows pages


def test_branch_reads_see_uncommitted_changes_commit_reads_do_not(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "kept", b"1")
    upload(sdk, repo_name, "main", "removed", b"2")
    base = commit(sdk, repo_name, "main")
    upload(sdk, repo_name, "main", "kept", b"changed")
    upload(sdk, repo_name, "main", "added", b"3")
    sdk.objects_api.delete_object(repo_name, "main", "removed")
    assert [r.path for r in sdk.objects_api.list_objects(repo_name, "main").results] == ["added", "kept"]
    assert read(sdk, repo_name, "main", "kept") == b"changed"
    api_error(404, sdk.objects_api.stat_object, repo_name, "main", "removed")
    for committed in (base.id, "main@"):
        assert [r.path for r in sdk.objects_api.list_objects(repo_name, committed).results] == ["kept", "removed"]
        assert read(sdk, repo_name, committed, "kept") == b"1"
    diff = sdk.branches_api.diff_branch(repo_name, "main")
    assert [(d.path, d.type) for d in diff.results] == [("added", "added"), ("kept", "changed"), ("removed", "removed")]
    assert diff.results[0].size_bytes == 1


def test_delete_object_and_bulk_delete(sdk: LakeFSClient, repo_name: str) -> None:
    for name in ["a", "b", "c", "d"]:
        upload(sdk, repo_name, "main", name, name.encode())
    commit(sdk, repo_name, "main")
    sdk.objects_api.delete_object(repo_name, "main", "a")
    sdk.objects_api.delete_object(repo_name, "main", "never-existed")  # 204 all the same
    result = sdk.objects_api.delete_objects(repo_name, "main", lakefs_sdk.PathList(paths=["b", "c", "missing"]))
    assert result.errors == []
    assert [r.path for r in sdk.objects_api.list_objects(repo_name, "main").results] == ["d"]
    api_error(400, sdk.objects_api.delete_objects, repo_name, "main", lakefs_sdk.PathList(paths=[f"p{i}" for i in range(1001)]))
    deleted = commit(sdk, repo_name, "main", "deletes")
    assert [r.path for r in sdk.objects_api.list_objects(repo_name, deleted.id).results] == ["d"]


def test_uploading_then_deleting_an_uncommitted_object_leaves_no_change(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "temp", b"x")
    sdk.objects_api.delete_object(repo_name, "main", "temp")
    assert sdk.branches_api.diff_branch(repo_name, "main").results == []
    api_error(400, commit, sdk, repo_name, "main")


def test_copy_object(sdk: LakeFSClient, repo_name: str) -> None:
    original = upload(sdk, repo_name, "main", "src", b"payload")
    copied = sdk.objects_api.copy_object(repo_name, "main", "dst", lakefs_sdk.ObjectCopyCreation(src_path="src"))
    assert copied.checksum == original.checksum and copied.path == "dst"
    assert read(sdk, repo_name, "main", "dst") == b"payload"


def test_reset_uncommitted_changes(sdk: LakeFSClient, repo_name: str) -> None:
    upload(sdk, repo_name, "main", "base", b"0")
    commit(sdk, repo_name, "main")
    for name in ["x/1", "x/2", "y"]:
        upload(sdk, repo_name, "main", name, b"1")
    sdk.branches_api.reset_branch(repo_name, "main", lakefs_sdk.ResetCreation(type="object", path="y"))
    assert [d.path for d in sdk.branches_api.diff_branch(repo_name, "main").results] == ["x/1", "x/2"]
    sdk.branches_api.reset_branch(repo_name, "main", lakefs_sdk.ResetCreation(type="common_prefix", path="x/"))
    assert sdk.branches_api.diff_branch(repo_name, "main").results == []
    upload(sdk, repo_name, "main", "z", b"1")
    sdk.branches_api.reset_branch(repo_name, "main", lakefs_sdk.ResetCreation(type="reset"))
    assert [r.path for r in sdk.objects_api.list_objects(repo_name, "main").results] == ["base"]


def test_identical_content_is_stored_once(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    first = upload(sdk, repo_name, "main", "one", b"same bytes")
    second = upload(sdk, repo_name, "main", "two", b"same bytes")
    assert first.physical_address == second.physical_address
    assert emulator.data_dir is not None
    assert first.physical_address.removeprefix("local://").startswith(str(emulator.data_dir))


@pytest.mark.parametrize("size", [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, (5 << 20) // 2])
def test_bodies_around_the_ingest_buffer_size_are_stored_whole(
    emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str, size: int
) -> None:
    """Bodies shorter and longer than the 1 MiB ingest buffer, stored new and then found
    already stored: each reads back whole, with its MD5."""
    content = os.urandom(size)
    for key in ("first", "again"):  # the second upload finds the content already stored
        stats = upload(sdk, repo_name, "main", key, content)
        assert (stats.size_bytes, stats.checksum) == (size, hashlib.md5(content).hexdigest())
        assert read(sdk, repo_name, "main", key) == content
    assert emulator.data_dir is not None
    assert not any((emulator.data_dir / "tmp").iterdir()), "no temporary file is left behind"


def test_content_uploaded_again_after_its_data_vanished_is_stored_again(
    sdk: LakeFSClient, repo_name: str
) -> None:
    stats = upload(sdk, repo_name, "main", "fragile", b"content whose data file is removed")
    os.unlink(stats.physical_address.removeprefix("local://"))
    upload(sdk, repo_name, "main", "fragile", b"content whose data file is removed")
    assert read(sdk, repo_name, "main", "fragile") == b"content whose data file is removed"


def test_object_whose_data_vanished_is_410(emulator: LakeFSEmulator, sdk: LakeFSClient, repo_name: str) -> None:
    stats = upload(sdk, repo_name, "main", "fragile", b"unique content for 410")
    os.unlink(stats.physical_address.removeprefix("local://"))
    error = api_error(410, sdk.objects_api.get_object, repo_name, "main", "fragile")
    assert json.loads(error.body) == {"message": "No data"}
    assert sdk.objects_api.stat_object(repo_name, "main", "fragile").checksum == stats.checksum
