"""A mirror that cannot be used must end in a correct clone from origin, with the reason recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.e2e import checkout, plain_clone, publish_to_static
from tests.support.ports import free_port
from tests.support.repos import fsck_ok, git, repo_snapshot
from tests.support.static_server import Fault


def expect_origin_fallback(result: dict, url: str, tmp_path: Path, *reasons: str) -> None:
    """The clone came from origin alone, and the http mirror's fallback reason holds one of ``reasons``."""
    assert reasons and all(reasons), "name at least one reason to look for, none of them empty"
    assert result["method"] == "origin"
    assert result["final_fetch"] is True
    http = [f for f in result["fallbacks"] if f["method"] == "http"]
    assert http and any(reason in http[0]["reason"] for reason in reasons), result["fallbacks"]
    ours = Path(result["path"])
    assert repo_snapshot(ours) == repo_snapshot(plain_clone(url, tmp_path / "git-clone"))
    assert fsck_ok(ours)
    assert [p.name for p in (ours / ".git/objects/pack").iterdir() if p.name.startswith("tmp")] == []


@pytest.mark.parametrize("verify", ["auto", "full"])
@pytest.mark.parametrize("fault,reason", [
    (Fault(status=404), "HTTP 404"),
    (Fault(status=500), "HTTP 500"),
    (Fault(flip_byte_at=-1), "sha256"),
    (Fault(truncate_at=-1), "truncated"),
])
def test_broken_bundle_download_falls_back(served_origin, static_server, tmp_path, fault, reason, verify):
    published = publish_to_static(served_origin, static_server, tmp_path)
    bundle = f"{published['prefix']}/{published['bundle']['key']}"
    size = published["bundle"]["size"]
    if fault.flip_byte_at == -1:
        fault.flip_byte_at = size // 2  # inside the pack, past the header
    if fault.truncate_at == -1:
        fault.truncate_at = size - 1000
    static_server.faults[bundle] = fault

    result = checkout(served_origin.git_url, tmp_path / "co", "--verify", verify)

    reasons = [reason]
    if verify == "full" and (fault.flip_byte_at or fault.truncate_at):
        reasons.append("index-pack rejected the pack")  # it may see the damage before the sha256 does
    expect_origin_fallback(result, served_origin.git_url, tmp_path, *reasons)


def test_broken_index_falls_back(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    static_server.faults[f"{published['prefix']}/{published['index']['key']}"] = Fault(flip_byte_at=100)
    result = checkout(served_origin.git_url, tmp_path / "co")
    expect_origin_fallback(result, served_origin.git_url, tmp_path, "pack index does not match")


def test_connection_refused_falls_back(served_origin, tmp_path):
    work = tmp_path / "publisher"
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(work))
    run_cli("publish", "--repo", work, "--store", tmp_path / "store",
            "--public-url", f"http://127.0.0.1:{free_port()}/nothing-listens")
    result = checkout(served_origin.git_url, tmp_path / "co")
    expect_origin_fallback(result, served_origin.git_url, tmp_path, "cannot reach")


def test_wrong_sha256_in_the_list_falls_back(served_origin, static_server, tmp_path):
    """Someone replaced the bundle in the store: the bytes no longer match what origin vouches for."""
    published = publish_to_static(served_origin, static_server, tmp_path)
    other = tmp_path / "other.bundle"
    git(served_origin.path, "bundle", "create", str(other), "main")
    target = static_server.root / published["prefix"] / published["bundle"]["key"]
    data = other.read_bytes()
    target.write_bytes(data + b"\0" * (published["bundle"]["size"] - len(data)))  # same size, other content
    result = checkout(served_origin.git_url, tmp_path / "co", "--verify", "full")
    expect_origin_fallback(result, served_origin.git_url, tmp_path,
                           "sha256 does not match", "index-pack rejected the pack")


def test_file_url_needs_the_flag(served_origin, tmp_path):
    work = tmp_path / "publisher"
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(work))
    run_cli("publish", "--repo", work, "--store", tmp_path / "store")
    result = checkout(served_origin.git_url, tmp_path / "co")
    expect_origin_fallback(result, served_origin.git_url, tmp_path, "--allow-file-urls")

    allowed = checkout(served_origin.git_url, tmp_path / "co2", "--allow-file-urls")
    assert allowed["method"] == "http" and allowed["final_fetch"] is False


def test_garbage_mirror_blob_is_ignored_with_a_warning(served_origin, tmp_path):
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(work))
    (work / "junk").write_text("[bundle]\n\tversion = 7\n")
    blob = git(work, "hash-object", "-w", "junk")
    git(work, "push", "-q", "origin", f"{blob}:refs/mirrors/bundle/http")
    result = checkout(served_origin.git_url, tmp_path / "co")
    assert result["method"] == "origin"
    assert any("unsupported version" in w for w in result["warnings"])
    assert fsck_ok(tmp_path / "co")


def test_failed_checkout_leaves_no_directory_behind(tmp_path):
    missing = tmp_path / "does-not-exist.git"
    out = run_cli("checkout", missing, "--path", tmp_path / "co", expect=1)
    assert "cannot list refs" in out.stderr
    assert not (tmp_path / "co").exists()


def test_non_empty_target_is_a_usage_error(served_origin, tmp_path):
    (tmp_path / "co").mkdir()
    (tmp_path / "co" / "keep.txt").write_text("mine")
    out = run_cli("checkout", served_origin.git_url, "--path", tmp_path / "co", expect=2)
    assert "not an empty directory" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (tmp_path / "co" / "keep.txt").read_text() == "mine"
