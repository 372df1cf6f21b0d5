"""Publishing when things are hostile or broken: a forged previous list, a full store, a failing S3 upload.

Whoever can push refs/mirrors/* writes the list a publish reads back; nothing in it
may crash a publish. A store that cannot take the upload fails the publish in one
line, with origin's refs untouched and no partial object left in the store.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from mirrorci.gitcmd import Git
from mirrorci.mirrorlist import REF_BUNDLE_HTTP
from mirrorci.publish import MAX_CREATION_TOKEN
from mirrorci.remote import ls_remote
from tests.support.cli import CliResult, run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout
from tests.support.repos import advance_origin, git
from tests.support.s3_server import s3_client, s3_env
from tests.support.threaded_http import ThreadedHTTPServer


def publish(origin, work_root: Path, store: Path | str, *extra: str, expect: int | None = 0,
            env: dict | None = None) -> CliResult:
    work = work_root / f"publisher-{uuid.uuid4().hex[:6]}"
    git(work_root, "clone", "-q", "--mirror", origin.git_url, str(work))
    return run_cli("publish", "--repo", work, "--store", store, "--json", *extra, expect=expect, env=env)


def current_list(bare: Path) -> str:
    return git(bare, "cat-file", "blob", REF_BUNDLE_HTTP) + "\n"


def set_mirror_ref(bare: Path, content: bytes | None = None, oid: str | None = None) -> str:
    """Point refs/mirrors/bundle/http on origin at new content (or at an existing object)."""
    if oid is None:
        oid = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=bare, input=content,
                             capture_output=True, check=True).stdout.decode().strip()
    git(bare, "update-ref", REF_BUNDLE_HTTP, oid)
    return oid


def mirror_refs(url: str, tmp_path: Path) -> dict[str, str]:
    return ls_remote(Git(tmp_path), url).mirror_refs()


def errors(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_huge_header_size_in_the_previous_list_does_not_stop_the_next_publish(served_origin, tmp_path):
    store = tmp_path / "store"
    first = publish(served_origin, tmp_path, store).json
    hostile = re.sub(r"headerSize = \d+", "headerSize = 99999999999", current_list(served_origin.path))
    assert "99999999999" in hostile
    set_mirror_ref(served_origin.path, hostile.encode())
    advance_origin(served_origin.path, tmp_path / "advance")

    second = publish(served_origin, tmp_path, store)

    assert second.json["published"] == "base"  # nothing is built on a list it cannot trust
    assert "99999999999 byte bundle header" in second.stderr
    assert second.json["creation_token"] > first["creation_token"]
    result = checkout(served_origin.git_url, tmp_path / "co", "--allow-file-urls")
    assert result["fallbacks"] == [] and result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


@pytest.mark.parametrize("token", [str(10**30), "9" * 4300, "-5"], ids=["1e30", "4300-digits", "negative"])
def test_an_absurd_creation_token_in_the_previous_list_is_ignored(served_origin, tmp_path, token):
    store = tmp_path / "store"
    publish(served_origin, tmp_path, store)
    hostile = re.sub(r"creationToken = \d+", f"creationToken = {token}", current_list(served_origin.path))
    set_mirror_ref(served_origin.path, hostile.encode())

    second = publish(served_origin, tmp_path, store)

    assert 0 < second.json["creation_token"] <= MAX_CREATION_TOKEN
    assert "creationToken" in second.stderr or "not a number" in second.stderr


def test_a_creation_token_near_the_limit_is_still_continued(served_origin, tmp_path):
    store = tmp_path / "store"
    publish(served_origin, tmp_path, store)
    near = MAX_CREATION_TOKEN - 5
    hostile = re.sub(r"creationToken = \d+", f"creationToken = {near}", current_list(served_origin.path))
    set_mirror_ref(served_origin.path, hostile.encode())
    advance_origin(served_origin.path, tmp_path / "advance")

    second = publish(served_origin, tmp_path, store).json
    assert second["published"] == "increment" and second["creation_token"] == near + 1


@pytest.mark.parametrize("uri", ["http://[::1/x", "s3:///k", "relative/path", "http://h:port/x"])
def test_a_malformed_uri_in_the_previous_list_means_a_fresh_publish(served_origin, tmp_path, uri):
    store = tmp_path / "store"
    publish(served_origin, tmp_path, store)
    hostile = re.sub(r"(?m)^(\s*)uri = .*$", lambda m: f"{m.group(1)}uri = {uri}", current_list(served_origin.path))
    set_mirror_ref(served_origin.path, hostile.encode())
    advance_origin(served_origin.path, tmp_path / "advance")

    second = publish(served_origin, tmp_path, store)

    assert second.json["refs"][REF_BUNDLE_HTTP] == mirror_refs(served_origin.git_url, tmp_path)[REF_BUNDLE_HTTP]
    result = checkout(served_origin.git_url, tmp_path / "co", "--allow-file-urls")
    assert result["fallbacks"] == [] and result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


GARBAGE = {"not-utf-8": b"\xff\xfe not utf-8", "bad-syntax": b"[bundle\n", "over-1-MiB": b"x" * (2 << 20)}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_as_the_previous_list_means_a_fresh_publish(served_origin, tmp_path, kind):
    set_mirror_ref(served_origin.path, GARBAGE[kind])
    published = publish(served_origin, tmp_path, tmp_path / "store").json
    assert mirror_refs(served_origin.git_url, tmp_path) == published["refs"]


def test_a_mirror_ref_pointing_at_a_tree_means_a_fresh_publish(served_origin, tmp_path):
    set_mirror_ref(served_origin.path, oid=git(served_origin.path, "rev-parse", "main^{tree}"))
    out = publish(served_origin, tmp_path, tmp_path / "store")
    assert "does not point at a blob" in out.stderr
    assert mirror_refs(served_origin.git_url, tmp_path) == out.json["refs"]


def test_publishing_into_origin_itself_survives_a_mirror_ref_pointing_at_a_tree(origin_bare, tmp_path):
    set_mirror_ref(origin_bare, oid=git(origin_bare, "rev-parse", "main^{tree}"))
    out = run_cli("publish", "--repo", origin_bare, "--no-push", "--store", tmp_path / "store", "--json")
    assert git(origin_bare, "rev-parse", REF_BUNDLE_HTTP) == out.json["refs"][REF_BUNDLE_HTTP]
    assert git(origin_bare, "cat-file", "-t", REF_BUNDLE_HTTP) == "blob"


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A 1 MiB tmpfs: a store that runs out of space for real (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_store_fails_in_one_line_and_leaves_refs_and_store_clean(served_origin, tmp_path, tiny_fs):
    first = publish(served_origin, tmp_path, tmp_path / "store").json
    advance_origin(served_origin.path, tmp_path / "advance")

    out = publish(served_origin, tmp_path, tiny_fs / "store", expect=1)

    assert errors(out) == [errors(out)[0]] and out.stderr.strip().splitlines()[-1] == errors(out)[0]
    assert "no space left on device while writing" in errors(out)[0]
    assert "free space or choose another store" in errors(out)[0]
    assert "Traceback" not in out.stderr
    assert mirror_refs(served_origin.git_url, tmp_path) == first["refs"]
    left = sorted(str(p.relative_to(tiny_fs)) for p in tiny_fs.rglob("*") if p.is_file())
    assert not [p for p in left if p.endswith(".tmp") or p.endswith(".bundle")], left


class FaultyS3Proxy(ThreadedHTTPServer):
    """Forwards every request to a real S3 endpoint, except that it refuses part `fail_part` of any upload."""

    def __init__(self, upstream_port: int, fail_part: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.fail_part = fail_part
        self.refused: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    class handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = b""
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return data
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _relay(self) -> None:
            owner = self.server.owner  # type: ignore[attr-defined]
            body = self._body()
            if self.command == "PUT" and re.search(rf"[?&]partNumber={owner.fail_part}(&|$)", self.path):
                owner.refused.append(self.path)
                payload = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>EntityTooLarge</Code>'
                           b"<Message>Your proposed upload exceeds the maximum allowed size</Message></Error>")
                self.send_response(400)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            upstream = http.client.HTTPConnection("127.0.0.1", owner.upstream_port, timeout=60)
            hop_by_hop = ("host", "transfer-encoding", "connection")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay


def test_a_refused_s3_part_aborts_the_upload_and_changes_no_ref(served_origin, moto, tmp_path):
    bucket = f"mirrors-{uuid.uuid4().hex[:8]}"
    client = s3_client(moto.endpoint_url)
    client.create_bucket(Bucket=bucket)
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(work))
    (work / "big.bin").write_bytes(os.urandom(12 << 20))
    git(work, "add", "big.bin")
    git(work, "commit", "-qm", "big file")
    git(work, "push", "-q", "origin", "HEAD")
    before = mirror_refs(served_origin.git_url, tmp_path)

    with FaultyS3Proxy(moto.port, fail_part=2) as proxy:
        out = publish(served_origin, tmp_path, f"s3://{bucket}/git", "--s3-part-size", "5",
                      "--s3-addressing-style", "path", expect=1, env=s3_env(proxy.url))

    assert proxy.refused, "the upload never reached part 2"
    assert len(errors(out)) == 1 and "EntityTooLarge" in errors(out)[0] and "Traceback" not in out.stderr
    assert mirror_refs(served_origin.git_url, tmp_path) == before
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if k.endswith(".bundle")], keys
