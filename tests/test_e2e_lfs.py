"""LFS objects through the mirror, against Debian's git-lfs and a real LFS server (giftless).

Every byte origin's LFS server sends is counted by the proxy in front of it
(tests/support/lfs_server.py): a current mirror must leave it at zero.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout
from tests.support.lfs_server import LfsOrigin, LfsServer, make_lfs_origin
from tests.support.repos import git
from tests.support.s3_server import s3_client, s3_env

pytestmark = pytest.mark.skipif(shutil.which("git-lfs") is None,
                                reason="git-lfs is not installed (Debian: apt-get install git-lfs)")

TOKEN = "lfs-test-token-never-for-mirrors"


@pytest.fixture(scope="session")
def _lfs_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LfsServer]:
    with LfsServer(tmp_path_factory.mktemp("lfs-storage")) as server:
        yield server


@pytest.fixture
def lfs_server(_lfs_session: LfsServer) -> LfsServer:
    _lfs_session.reset()
    return _lfs_session


@pytest.fixture
def lfs_origin(lfs_server: LfsServer, git_serve_root: Path, git_daemon: Any, tmp_path: Path) -> LfsOrigin:
    origin = make_lfs_origin(lfs_server, git_serve_root, git_daemon.url_for, tmp_path)
    lfs_server.reset()
    return origin


def publish(origin: LfsOrigin, repo: Path, static_server: Any, prefix: str | None = None,
            *extra: str) -> dict[str, Any]:
    prefix = prefix or f"store-{uuid.uuid4().hex[:8]}"
    summary = run_cli("publish", "--repo", repo, "--store", static_server.root / prefix,
                      "--public-url", f"{static_server.url}/{prefix}", "--json", *extra).json
    summary["prefix"] = prefix
    return summary


def mirror_clone(url: str, tmp_path: Path) -> Path:
    """What a CI job publishing from its own clone often has: every ref, no LFS object."""
    dest = tmp_path / f"publisher-{uuid.uuid4().hex[:6]}"
    git(tmp_path, "clone", "-q", "--mirror", url, str(dest))
    return dest


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_lfs_files(clone: Path, origin: LfsOrigin, paths: list[str] | None = None) -> None:
    """The work tree holds the real content, git sees it as clean, and later git commands smudge."""
    for rel in paths if paths is not None else origin.files:
        assert (clone / rel).read_bytes() == origin.files[rel], rel
    assert git(clone, "status", "--porcelain") == ""
    assert git(clone, "config", "--get", "filter.lfs.process") == "git-lfs filter-process"


def stored_object(static_root: Path, prefix: str, name: str, oid: str) -> Path:
    return static_root / prefix / name / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def test_current_mirror_serves_every_lfs_object_and_origins_lfs_server_sends_nothing(
        lfs_origin, lfs_server, static_server, git_daemon, tmp_path):
    published = publish(lfs_origin, lfs_origin.work, static_server)
    lfs = published["lfs"]
    assert lfs["published"] is True and lfs["objects"] == 4 and lfs["uploaded"] == 4
    assert lfs["fetched_from_origin"] == 0 and lfs["missing"] == 0
    assert lfs_server.requests == []  # the publishing clone had every object

    url = git_daemon.url_for(lfs_origin.bare.name)
    result = checkout(url, tmp_path / "co", "--lfs")

    assert result["lfs"]["files"] == 5 and result["lfs"]["objects"] == 4
    assert result["lfs"]["from_mirror"] == 4 and result["lfs"]["from_origin"] == 0
    assert result["lfs"]["bytes_from_mirror"] == 120_000 + 60_000 + 5_000 + 30_000
    assert result["lfs"]["fallback"] is None
    assert lfs_server.bytes_sent == 0 and lfs_server.requests == []
    assert_lfs_files(tmp_path / "co", lfs_origin)
    assert os.access(tmp_path / "co" / "tools" / "run.bin", os.X_OK)
    assert_same_as_git_clone(tmp_path / "co", url, tmp_path)


def test_publish_fetches_missing_objects_from_origins_lfs_server_once(
        lfs_origin, lfs_server, static_server, git_daemon, tmp_path):
    publisher = mirror_clone(git_daemon.url_for(lfs_origin.bare.name), tmp_path)

    published = publish(lfs_origin, publisher, static_server)
    first = published["lfs"]
    fetched_bytes = lfs_server.object_bytes
    second = publish(lfs_origin, publisher, static_server, published["prefix"])["lfs"]

    assert first["fetched_from_origin"] == 4 and first["uploaded"] == 4 and first["listed"] == 4
    assert fetched_bytes == 120_000 + 60_000 + 5_000 + 30_000
    assert second["uploaded"] == 0 and second["already_in_store"] == 4 and second["fetched_from_origin"] == 0
    assert second["manifest"]["sha256"] == first["manifest"]["sha256"]
    assert lfs_server.object_bytes == fetched_bytes  # nothing more was asked of the LFS server


def test_objects_newer_than_the_mirror_come_from_origins_lfs_server(
        lfs_origin, lfs_server, static_server, git_http, tmp_path):
    publish(lfs_origin, lfs_origin.work, static_server)
    new = os.urandom(40_000)
    lfs_origin.commit({"models/new.bin": new}, "newer than the mirror")
    lfs_server.reset()

    url = git_http.url_for(lfs_origin.bare.name)
    result = checkout(url, tmp_path / "co", "--lfs", env={"MIRRORCI_TOKEN": TOKEN})

    assert result["lfs"]["from_mirror"] == 4 and result["lfs"]["from_origin"] == 1
    assert result["lfs"]["bytes_from_origin"] == len(new)
    assert "1 object(s) not in the mirror's LFS manifest" in result["lfs"]["fallback"]
    assert lfs_server.object_bytes == len(new)
    assert [p.rsplit("/", 1)[-1] for p in lfs_server.downloads()] == [lfs_origin.oid("models/new.bin")]
    assert_lfs_files(tmp_path / "co", lfs_origin)
    # Origin's token went to origin only: the mirror host never saw a credential.
    assert static_server.requests and not any("Authorization" in h for h in static_server.headers_seen)
    assert not any(TOKEN in str(h) for h in static_server.headers_seen)


def test_corrupted_mirror_object_is_rejected_and_fetched_from_origin(
        lfs_origin, lfs_server, static_server, git_daemon, tmp_path):
    published = publish(lfs_origin, lfs_origin.work, static_server)
    oid = lfs_origin.oid("models/weights.bin")
    bad = stored_object(static_server.root, published["prefix"], published["name"], oid)
    data = bytearray(bad.read_bytes())
    data[1000] ^= 0xFF  # same size, other content
    bad.write_bytes(bytes(data))

    result = checkout(git_daemon.url_for(lfs_origin.bare.name), tmp_path / "co", "--lfs")

    assert result["lfs"]["from_mirror"] == 3 and result["lfs"]["from_origin"] == 1
    assert "sha256 does not match its oid" in result["lfs"]["fallback"]
    assert lfs_server.object_bytes == 60_000
    assert_lfs_files(tmp_path / "co", lfs_origin)
    assert sha256_of(tmp_path / "co/.git/lfs/objects" / oid[:2] / oid[2:4] / oid) == oid


def test_sparse_checkout_fills_only_the_files_it_holds(lfs_origin, lfs_server, static_server, git_daemon, tmp_path):
    publish(lfs_origin, lfs_origin.work, static_server)

    result = checkout(git_daemon.url_for(lfs_origin.bare.name), tmp_path / "co", "--lfs", "--sparse-checkout", "docs")

    co = tmp_path / "co"
    assert result["lfs"]["files"] == 1 and result["lfs"]["from_mirror"] == 1
    assert_lfs_files(co, lfs_origin, ["docs/manual.bin"])
    assert not (co / "assets").exists() and not (co / "models").exists()
    assert [p.name for p in (co / ".git/lfs/objects").rglob("*") if p.is_file()] == [lfs_origin.oid("docs/manual.bin")]
    assert lfs_server.requests == []


def test_without_mirrors_a_sparse_checkout_asks_origin_only_for_its_files(lfs_origin, lfs_server, git_daemon, tmp_path):
    result = checkout(git_daemon.url_for(lfs_origin.bare.name), tmp_path / "co", "--lfs", "--no-mirrors",
                      "--sparse-checkout", "docs")

    assert result["lfs"]["from_origin"] == 1 and result["lfs"]["from_mirror"] == 0
    assert result["lfs"]["fallback"] == "no mirror list was read for this checkout"
    assert_lfs_files(tmp_path / "co", lfs_origin, ["docs/manual.bin"])
    assert [p.rsplit("/", 1)[-1] for p in lfs_server.downloads()] == [lfs_origin.oid("docs/manual.bin")]
    assert lfs_server.object_bytes == 30_000


def test_hostile_manifest_is_ignored_and_origin_serves_the_objects(
        lfs_origin, lfs_server, static_server, git_daemon, tmp_path):
    published = publish(lfs_origin, lfs_origin.work, static_server)
    manifest = static_server.root / published["prefix"] / published["lfs"]["manifest"]["key"]
    manifest.write_bytes(manifest.read_bytes().replace(b"../objects/", b"../objectz/"))  # same size, other sha256

    result = checkout(git_daemon.url_for(lfs_origin.bare.name), tmp_path / "co", "--lfs")

    assert result["lfs"]["from_mirror"] == 0 and result["lfs"]["from_origin"] == 4
    assert "sha256 does not match the ref" in result["lfs"]["fallback"]
    assert lfs_server.object_bytes == 120_000 + 60_000 + 5_000 + 30_000
    assert_lfs_files(tmp_path / "co", lfs_origin)


def test_lfs_without_git_lfs_is_one_usage_error(lfs_origin, git_daemon, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(str(shutil.which("git")))

    out = run_cli("checkout", git_daemon.url_for(lfs_origin.bare.name), "--path", tmp_path / "co", "--lfs",
                  env={"PATH": str(bin_dir)}, expect=2)

    assert "install git-lfs" in out.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "co").exists()


def test_publish_without_lfs_in_the_tips_writes_no_lfs_ref(served_origin, static_server, tmp_path):
    summary = run_cli("publish", "--repo", mirror_clone(served_origin.git_url, tmp_path),
                      "--store", static_server.root / "plain", "--json").json

    assert summary["lfs"]["published"] is False
    assert "refs/mirrors/lfs/http" not in summary["refs"]


def test_lfs_false_publishes_no_lfs_objects(lfs_origin, static_server, tmp_path):
    summary = publish(lfs_origin, lfs_origin.work, static_server, None, "--lfs", "false")

    assert summary["lfs"] == {"mode": "false", "published": False, "reason": "--lfs false"}
    assert "refs/mirrors/lfs/http" not in summary["refs"]
    assert not (static_server.root / summary["prefix"] / summary["name"] / "lfs").exists()


def test_s3_store_serves_lfs_objects_through_the_s3_api(lfs_origin, lfs_server, moto, git_daemon, tmp_path):
    bucket = f"lfs-{uuid.uuid4().hex[:8]}"
    s3_client(moto.endpoint_url).create_bucket(Bucket=bucket)
    env = {**s3_env(moto.endpoint_url), "MIRRORCI_S3_ADDRESSING_STYLE": "path"}
    published = run_cli("publish", "--repo", lfs_origin.work, "--store", f"s3://{bucket}/m", "--json", env=env).json
    assert published["lfs"]["manifest"]["url"].startswith(f"s3://{bucket}/m/")
    keys = {o["Key"] for o in s3_client(moto.endpoint_url).list_objects_v2(Bucket=bucket)["Contents"]}
    oid = lfs_origin.oid("models/weights.bin")
    assert f"m/{published['name']}/lfs/objects/{oid[:2]}/{oid[2:4]}/{oid}" in keys

    result = checkout(git_daemon.url_for(lfs_origin.bare.name), tmp_path / "co", "--lfs", env=env)

    assert result["lfs"]["from_mirror"] == 4 and result["lfs"]["from_origin"] == 0
    assert lfs_server.requests == []
    assert_lfs_files(tmp_path / "co", lfs_origin)
