"""Publishing to a real S3 endpoint (moto_server over HTTP) and checking out from it."""

from __future__ import annotations

import os
import urllib.request
import uuid
from pathlib import Path

import pytest

from mirrorci.errors import MirrorciError
from mirrorci.gitcmd import Git
from mirrorci.remote import ls_remote, push_refs_atomic
from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout
from tests.support.repos import git
from tests.support.s3_server import s3_client, s3_env


@pytest.fixture
def bucket(moto) -> str:
    name = f"mirrors-{uuid.uuid4().hex[:8]}"
    s3_client(moto.endpoint_url).create_bucket(Bucket=name)
    return name


def mirror_clone(origin, tmp_path: Path) -> Path:
    work = tmp_path / "publisher"
    git(tmp_path, "clone", "-q", "--mirror", origin.git_url, str(work))
    return work


def test_s3_store_without_public_url_is_read_through_the_s3_api(served_origin, moto, bucket, tmp_path):
    env = s3_env(moto.endpoint_url)
    published = run_cli("publish", "--repo", mirror_clone(served_origin, tmp_path), "--store", f"s3://{bucket}/git/",
                        "--s3-addressing-style", "path", "--json", env=env).json
    assert published["bundle"]["url"] == f"s3://{bucket}/git/{published['bundle']['key']}"
    objects = {o["Key"] for o in s3_client(moto.endpoint_url).list_objects_v2(Bucket=bucket)["Contents"]}
    expected = {f"git/{published['bundle']['key']}", f"git/{published['index']['key']}",
                f"git/{published['name']}/bundle-list"}
    assert expected <= objects

    result = checkout(served_origin.git_url, tmp_path / "co", env=env)

    assert result["method"] == "s3"
    assert result["fallbacks"][0]["method"] == "http"  # default order tries http first; the list has only s3:// URLs
    assert result["final_fetch"] is False and result["bytes_from_origin"] == 0
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_s3_store_with_public_url_is_downloaded_over_plain_http(served_origin, moto, bucket, tmp_path):
    env = s3_env(moto.endpoint_url)
    public = f"{moto.endpoint_url}/{bucket}/pub"
    published = run_cli("publish", "--repo", mirror_clone(served_origin, tmp_path), "--store", f"s3://{bucket}/pub",
                        "--public-url", public, "--s3-acl", "public-read", "--json", env=env).json
    with urllib.request.urlopen(published["bundle_list_url"]) as response:  # anonymous, like any client
        assert f"sha256 = {published['bundle']['sha256']}" in response.read().decode()

    # The checkout has no AWS credentials at all: plain HTTP only.
    clean_env = {k: "" for k in env}
    result = checkout(served_origin.git_url, tmp_path / "co", env=clean_env)

    assert result["method"] == "http" and result["apply_path"] == "fast" and result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_large_bundle_is_uploaded_in_parts(served_origin, moto, bucket, tmp_path):
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(work))
    (work / "big.bin").write_bytes(os.urandom(12 << 20))
    git(work, "add", "big.bin")
    git(work, "commit", "-qm", "big file")
    git(work, "push", "-q", "origin", "HEAD")
    env = s3_env(moto.endpoint_url)
    published = run_cli("publish", "--repo", mirror_clone(served_origin, tmp_path), "--store", f"s3://{bucket}",
                        "--s3-part-size", "5", "--json", env=env).json
    head = s3_client(moto.endpoint_url).head_object(Bucket=bucket, Key=published["bundle"]["key"])
    assert head["ContentLength"] == published["bundle"]["size"] > 12 << 20
    parts = -(-published["bundle"]["size"] // (5 << 20))
    assert head["ETag"].strip('"').endswith(f"-{parts}")  # a multipart upload's ETag counts its parts

    result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "s3", env=env)
    assert result["method"] == "s3" and result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_failed_upload_leaves_the_old_mirror_refs(served_origin, moto, bucket, tmp_path):
    env = s3_env(moto.endpoint_url)
    work = mirror_clone(served_origin, tmp_path)
    first = run_cli("publish", "--repo", work, "--store", f"s3://{bucket}", "--json", env=env).json

    out = run_cli("publish", "--repo", work, "--store", "s3://no-such-bucket-here/x", env=env, expect=2)

    assert out.stderr.strip().splitlines()[-1] == (
        "error: --store: bucket 'no-such-bucket-here' does not exist; create it or fix the bucket name")
    refs = ls_remote(Git(tmp_path), served_origin.git_url).mirror_refs()
    assert refs == first["refs"]


def test_rejected_push_changes_no_mirror_ref(served_origin, static_server, tmp_path):
    hook = served_origin.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'mirrors are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    out = run_cli("publish", "--repo", mirror_clone(served_origin, tmp_path), "--store", tmp_path / "store", expect=1)
    assert "no mirror ref was changed" in out.stderr
    assert ls_remote(Git(tmp_path), served_origin.git_url).mirror_refs() == {}


def test_push_with_a_stale_lease_is_refused_whole(served_origin, tmp_path):
    """Two publishes race: the one whose view of refs/mirrors/* is stale must not overwrite the other."""
    work = mirror_clone(served_origin, tmp_path)
    g = Git(work)
    a = g.out("hash-object", "-w", "--stdin", input="A\n")
    b = g.out("hash-object", "-w", "--stdin", input="B\n")
    c = g.out("hash-object", "-w", "--stdin", input="C\n")
    push_refs_atomic(g, served_origin.git_url, {"refs/mirrors/bundle/http": a}, {})
    # The racing publisher still believes the ref is absent, and writes two refs.
    with pytest.raises(MirrorciError, match="no mirror ref was changed"):
        push_refs_atomic(g, served_origin.git_url,
                         {"refs/mirrors/bundle/http": b, "refs/mirrors/fetch/git": c}, {})
    assert ls_remote(g, served_origin.git_url).mirror_refs() == {"refs/mirrors/bundle/http": a}
