"""End to end: publish to a real store, check out through real servers, compare with git clone."""

from __future__ import annotations

import uuid

import pytest

from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout, plain_clone, publish_to_static
from tests.support.repos import advance_origin, fsck_ok, git, repo_snapshot


@pytest.mark.parametrize("transport", ["git", "http"])
@pytest.mark.parametrize("verify", ["auto", "full"])
def test_checkout_from_current_mirror_needs_nothing_from_origin(served_origin, static_server, tmp_path, transport,
                                                                 verify):
    published = publish_to_static(served_origin, static_server, tmp_path)
    assert set(published["refs"]) == {"refs/mirrors/bundle/http"}
    url = served_origin.git_url if transport == "git" else served_origin.http_url

    result = checkout(url, tmp_path / "co", "--verify", verify)

    assert result["method"] == "http", result["fallbacks"]
    assert result["apply_path"] == ("fast" if verify == "auto" else "streaming")
    assert result["final_fetch"] is False
    assert result["bytes_from_origin"] == 0
    assert result["bytes_from_mirror"] == published["bundle"]["size"]
    assert result["fallbacks"] == []
    assert_same_as_git_clone(tmp_path / "co", url, tmp_path)
    bundle_path = f"{published['prefix']}/{published['bundle']['key']}"
    assert any(path == bundle_path for _, path, _ in static_server.requests)


def test_checkout_after_origin_moved_on_fetches_only_the_rest(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    advance_origin(served_origin.path, tmp_path / "advance")

    result = checkout(served_origin.http_url, tmp_path / "co")

    assert result["method"] == "http", result["fallbacks"]
    assert result["final_fetch"] is True
    assert 0 < result["bytes_from_origin"] < published["bundle"]["size"] / 10
    ours = tmp_path / "co"
    assert_same_as_git_clone(ours, served_origin.http_url, tmp_path)
    refs = git(ours, "for-each-ref", "--format=%(refname)")
    assert "refs/remotes/origin/new-branch" in refs and "refs/remotes/origin/feature/x" not in refs
    assert git(ours, "rev-parse", "v1.1") == git(served_origin.path, "rev-parse", "main")


@pytest.mark.parametrize("ref,detached", [("develop", False), ("v2.0", True), ("v1.1", True), ("COMMIT", True)])
def test_checkout_of_a_branch_tag_or_commit(served_origin, static_server, tmp_path, ref, detached):
    publish_to_static(served_origin, static_server, tmp_path)
    if ref == "COMMIT":
        ref = git(served_origin.path, "rev-parse", "main~2")
    result = checkout(served_origin.git_url, tmp_path / "co", "--ref", ref)
    assert result["detached"] is detached
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(theirs))
    git(theirs, "checkout", "-q", ref)
    assert git(tmp_path / "co", "rev-parse", "HEAD") == git(theirs, "rev-parse", "HEAD")
    head_ref = git(tmp_path / "co", "symbolic-ref", "-q", "HEAD", check=False)
    assert head_ref == git(theirs, "symbolic-ref", "-q", "HEAD", check=False)  # the same branch, or both detached
    assert head_ref == ("" if detached else f"refs/heads/{ref}")
    assert git(tmp_path / "co", "status", "--porcelain") == ""
    assert fsck_ok(tmp_path / "co")


def test_republish_moves_refs_with_increasing_creation_token(served_origin, static_server, tmp_path):
    first = publish_to_static(served_origin, static_server, tmp_path)
    advance_origin(served_origin.path, tmp_path / "advance")
    (tmp_path / "again").mkdir()
    second = publish_to_static(served_origin, static_server, tmp_path / "again", prefix=first["prefix"])
    assert second["creation_token"] > first["creation_token"]
    assert second["previous_refs"] == first["refs"]
    result = checkout(served_origin.git_url, tmp_path / "co")
    assert result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)
    # The list is now a chain, the first release's bundle and one increment: native git still clones from it.
    assert second["published"] == "increment" and second["increment"]["base_sha256"] == first["bundle"]["sha256"]
    native = tmp_path / "native"
    git(tmp_path, "clone", "-q", f"--bundle-uri={second['bundle_list_url']}", served_origin.git_url, str(native))
    refs = [r for r in repo_snapshot(native)["refs"] if not r[0].startswith("refs/bundles/")]
    assert refs == repo_snapshot(tmp_path / "co")["refs"]
    for key in (second["base"]["key"], second["increment"]["key"]):
        assert any(path == f"{second['prefix']}/{key}" for _, path, _ in static_server.requests)


def test_native_git_clone_with_bundle_uri_reads_the_published_list(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    list_url = published["bundle_list_url"]
    assert list_url.startswith(static_server.url)
    dest = tmp_path / "native"
    git(tmp_path, "clone", "-q", f"--bundle-uri={list_url}", served_origin.git_url, str(dest))
    bundle_path = f"{published['prefix']}/{published['bundle']['key']}"
    assert any(path == bundle_path for _, path, _ in static_server.requests)
    # git keeps the bundle's tips under refs/bundles/*; everything else matches a plain clone.
    native_refs = [r for r in repo_snapshot(dest)["refs"] if not r[0].startswith("refs/bundles/")]
    assert native_refs == repo_snapshot(plain_clone(served_origin.git_url, tmp_path / "p"))["refs"]


def test_git_mirror_method(served_origin, static_server, git_daemon, git_serve_root, tmp_path):
    mirror_name = f"mirror-{uuid.uuid4().hex[:8]}.git"
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(git_serve_root / mirror_name))
    publish_to_static(served_origin, static_server, tmp_path, "--git-mirror", git_daemon.url_for(mirror_name))

    result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "git")

    assert result["method"] == "git"
    assert result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_inspect_shows_the_parsed_mirror_refs(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path, "--git-mirror", "git://mirror.example/x.git")
    human = run_cli("inspect", served_origin.git_url).stdout
    assert published["bundle"]["url"] in human and "git mirror: git://mirror.example/x.git" in human
    data = run_cli("inspect", served_origin.git_url, "--json").json
    assert data["bundles"][0]["sha256"] == published["bundle"]["sha256"]
    assert data["bundles"][0]["idx_sha256"] == published["index"]["sha256"]
    assert data["git_mirrors"] == ["git://mirror.example/x.git"]


def test_no_mirrors_is_a_plain_clone(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    result = checkout(served_origin.git_url, tmp_path / "co", "--no-mirrors")
    assert result["method"] == "origin" and result["final_fetch"] is True
    assert static_server.requests == []
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_origin_without_mirrors_falls_back_and_says_so(served_origin, tmp_path):
    result = checkout(served_origin.git_url, tmp_path / "co")
    assert result["method"] == "origin"
    assert "no usable mirror" in result["fallbacks"][0]["reason"]
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


@pytest.mark.parametrize("verify", ["auto", "full"])
def test_sha256_repository_round_trip(git_daemon, git_serve_root, static_server, tmp_path, verify):
    """An origin with sha256 object ids: a v3 bundle, and a clone in the same object format."""
    src = tmp_path / "src"
    git(tmp_path, "init", "-q", "--object-format=sha256", "-b", "main", str(src))
    for n in range(3):
        (src / f"f{n}.txt").write_text(f"{n}\n")
        git(src, "add", ".")
        git(src, "commit", "-qm", f"commit {n}")
    git(src, "tag", "-a", "v1", "-m", "v1")
    name = f"sha256-{uuid.uuid4().hex[:8]}.git"
    git(tmp_path, "clone", "-q", "--bare", str(src), str(git_serve_root / name))
    origin = type("Origin", (), {"git_url": git_daemon.url_for(name)})()

    published = publish_to_static(origin, static_server, tmp_path)
    header = (static_server.root / published["prefix"] / published["bundle"]["key"]).read_bytes()[:40]
    assert header.startswith(b"# v3 git bundle\n@object-format=sha256\n")

    result = checkout(origin.git_url, tmp_path / "co", "--verify", verify)

    assert result["method"] == "http" and result["final_fetch"] is False and len(result["head"]) == 64
    assert git(tmp_path / "co", "rev-parse", "--show-object-format") == "sha256"
    assert_same_as_git_clone(tmp_path / "co", origin.git_url, tmp_path)
