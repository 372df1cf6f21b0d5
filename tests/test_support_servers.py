"""Proves the real-server fixtures in tests/support work as advertised."""

from __future__ import annotations

import http.client
import random
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.git_servers import GitHttpServer
from tests.support.repos import advance_origin, fsck_ok, git, repo_snapshot
from tests.support.s3_server import MotoServer, s3_client
from tests.support.static_server import Fault, StaticServer


def _refs(path: Path, prefix: str = "") -> list[tuple[str, str]]:
    return [r for r in repo_snapshot(path)["refs"] if r[0].startswith(prefix)]


@pytest.mark.parametrize("transport", ["git_url", "http_url"])
def test_clone_and_mirror_fetch_match_bare(served_origin, transport: str, tmp_path: Path) -> None:
    url = getattr(served_origin, transport)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", url, str(clone))
    assert fsck_ok(clone)
    snap = repo_snapshot(clone)
    assert snap["head_ref"] == "refs/heads/main" and snap["clean"]
    assert snap["branch_merge"] == "refs/heads/main"
    bare_refs = _refs(served_origin.path)
    remote_heads = [(r.replace("refs/remotes/origin/", "refs/heads/"), o)
                    for r, o in _refs(clone, "refs/remotes/origin/") if r != "refs/remotes/origin/HEAD"]
    assert remote_heads == [r for r in bare_refs if r[0].startswith("refs/heads/")]
    assert _refs(clone, "refs/tags/") == [r for r in bare_refs if r[0].startswith("refs/tags/")]
    # ls-remote over v2 and a mirror fetch give exactly the bare's refs (incl. blob tag).
    ls = git(tmp_path, "-c", "protocol.version=2", "ls-remote", url)
    assert ("refs/tags/blob-tag^{}" in ls) and ("HEAD" in ls)
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "init", "-q", "--bare", str(mirror))
    git(mirror, "fetch", "-q", url, "+refs/*:refs/*")
    assert _refs(mirror) == bare_refs


@pytest.mark.parametrize("transport", ["git_url", "http_url"])
def test_atomic_push(served_origin, transport: str, tmp_path: Path) -> None:
    url = getattr(served_origin, transport)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", url, str(work))
    git(work, "checkout", "-q", "-b", "pushed")
    (work / "pushed.bin").write_bytes(random.Random(7).randbytes(300_000))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "push me")
    # Small postBuffer forces a chunked request body over HTTP.
    git(work, "-c", "http.postBuffer=65536", "push", "-q", "--atomic", "origin", "pushed", "HEAD:refs/tags/t-pushed")
    tip = git(work, "rev-parse", "HEAD")
    assert git(served_origin.path, "rev-parse", "refs/heads/pushed", "refs/tags/t-pushed").split() == [tip, tip]
    assert fsck_ok(served_origin.path)


def test_http_counts_requests_and_chunked_push(served_origin, git_http: GitHttpServer, tmp_path: Path) -> None:
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", served_origin.http_url, str(work))
    assert ("GET", f"/{served_origin.name}/info/refs?service=git-upload-pack") in git_http.requests
    (work / "big.bin").write_bytes(random.Random(8).randbytes(300_000))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "big")
    git(work, "-c", "http.postBuffer=65536", "push", "-q", "origin", "main")
    assert git_http.chunked_requests >= 1
    assert git(served_origin.path, "rev-parse", "main") == git(work, "rev-parse", "HEAD")


def test_advance_origin_and_snapshots(origin_bare: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    git(tmp_path, "clone", "-q", str(origin_bare), str(a))
    git(tmp_path, "clone", "-q", str(origin_bare), str(b))
    assert repo_snapshot(a) | {"remote_url": None} == repo_snapshot(b) | {"remote_url": None}
    before = dict(_refs(origin_bare))
    advance_origin(origin_bare, tmp_path / "scratch")
    after = dict(_refs(origin_bare))
    assert "refs/heads/feature/x" not in after and "refs/heads/new-branch" in after
    assert after["refs/tags/v1.1"] == after["refs/heads/main"] != before["refs/heads/main"]
    assert git(origin_bare, "rev-list", "--count", f"{before['refs/heads/main']}..main") == "2"
    assert fsck_ok(origin_bare)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def blob(static_server: StaticServer) -> bytes:
    data = random.Random(3).randbytes(200_000)
    (static_server.root / "dir with space").mkdir(exist_ok=True)
    (static_server.root / "dir with space" / "b.bin").write_bytes(data)
    return data


def test_static_ranges(static_server: StaticServer, blob: bytes) -> None:
    url = static_server.url_for("dir with space/b.bin")
    status, headers, body = _get(url)
    assert (status, body, headers["Accept-Ranges"]) == (200, blob, "bytes")
    status, headers, body = _get(url, {"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (206, blob[10:20], f"bytes 10-19/{len(blob)}")
    assert _get(url, {"Range": "bytes=199990-"})[2] == blob[199990:]
    assert _get(url, {"Range": "bytes=-5"})[2] == blob[-5:]
    status, headers, _ = _get(url, {"Range": "bytes=200000-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(blob)}"
    conn = http.client.HTTPConnection("127.0.0.1", static_server.port, timeout=5)
    conn.request("HEAD", "/dir%20with%20space/b.bin")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == str(len(blob)) and resp.read() == b""
    conn.close()
    assert static_server.bytes_sent == len(blob) + 10 + 10 + 5
    assert static_server.requests[1] == ("GET", "dir with space/b.bin", "bytes=10-19")
    assert _get(static_server.url_for("missing"))[0] == 404
    assert _get(static_server.url + "/../../etc/passwd")[0] == 404


def test_static_faults(static_server: StaticServer, blob: bytes) -> None:
    rel = "dir with space/b.bin"
    url = static_server.url_for(rel)
    static_server.faults[rel] = Fault(status=500, times=1)
    assert _get(url)[0] == 500
    assert _get(url)[0] == 200  # one-shot fault cleared itself
    static_server.faults[rel] = Fault(status=404)
    assert _get(url)[0] == 404
    static_server.faults[rel] = Fault(truncate_at=1000, times=2)
    with pytest.raises(http.client.IncompleteRead) as info:
        _get(url)
    assert info.value.partial == blob[:1000]
    with pytest.raises(http.client.IncompleteRead) as info:
        _get(url, {"Range": "bytes=1000-"})  # counts body bytes, not file offsets
    assert info.value.partial == blob[1000:2000]
    assert _get(url, {"Range": "bytes=2000-"})[2] == blob[2000:]  # fault used up
    static_server.faults[rel] = Fault(flip_byte_at=70_000)
    body = _get(url)[2]
    assert len(body) == len(blob) and body[70_000] == blob[70_000] ^ 0xFF
    assert body[:70_000] == blob[:70_000] and body[70_001:] == blob[70_001:]
    static_server.reset()
    assert static_server.faults == {} and static_server.bytes_sent == 0
    assert _get(url)[2] == blob


def test_moto_s3(moto: MotoServer) -> None:
    s3 = s3_client(moto.endpoint_url)
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="a/b.txt", Body=b"hello", ACL="public-read")
    assert s3.get_object(Bucket="bkt", Key="a/b.txt")["Body"].read() == b"hello"
    assert _get(f"{moto.endpoint_url}/bkt/a/b.txt")[2] == b"hello"
    moto.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_git_helper_raises_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        git(tmp_path, "rev-parse", "--verify", "nope")
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0
