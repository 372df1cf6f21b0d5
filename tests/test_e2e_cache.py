"""Self-hosted runners: a cache directory kept between jobs makes later checkouts cheap."""

from __future__ import annotations

from pathlib import Path

from tests.support.e2e import assert_same_as_git_clone, checkout, publish_to_static
from tests.support.repos import advance_origin, git
from tests.support.static_server import Fault


def runner_one_release_behind(origin, static_server, tmp_path: Path, cache: Path) -> tuple[dict, dict]:
    """Release 1 published and checked out on a runner with a cache, then release 2 published to the same store."""
    first = publish_to_static(origin, static_server, tmp_path)
    checkout(origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    advance_origin(origin.path, tmp_path / "advance")
    (tmp_path / "again").mkdir()
    return first, publish_to_static(origin, static_server, tmp_path / "again", prefix=first["prefix"])


def test_warm_cache_needs_neither_mirror_nor_origin_objects(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    cache = tmp_path / "cache"
    cold = checkout(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    assert cold["method"] == "http" and cold["final_fetch"] is False
    assert list((cache / "objects.git/objects/pack").glob("pack-*.pack"))
    static_server.reset()

    warm = checkout(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)

    assert warm["method"] == "cache" and warm["final_fetch"] is False
    assert warm["bytes_from_mirror"] == 0 and warm["bytes_from_origin"] == 0
    assert static_server.requests == []
    assert_same_as_git_clone(tmp_path / "job2", served_origin.git_url, tmp_path)


def test_warm_cache_one_step_behind_fetches_only_what_changed(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    cache = tmp_path / "cache"
    checkout(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    advance_origin(served_origin.path, tmp_path / "advance")
    static_server.reset()

    warm = checkout(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)

    assert warm["method"] == "cache" and warm["final_fetch"] is True
    assert warm["mirror_blobs_fetched"] == 0  # the mirror list came from the cache, by blob id
    assert 0 < warm["bytes_from_origin"] < published["bundle"]["size"] / 10
    assert static_server.requests == []
    assert_same_as_git_clone(tmp_path / "job2", served_origin.git_url, tmp_path)


def test_new_release_reaches_a_warm_runner_as_one_pre_indexed_increment(served_origin, static_server, tmp_path):
    cache = tmp_path / "cache"
    first, second = runner_one_release_behind(served_origin, static_server, tmp_path, cache)
    assert second["published"] == "increment"
    since = second["increment"]
    assert since["base_sha256"] == first["bundle"]["sha256"] and since["parent_sha256"] == first["bundle"]["sha256"]
    assert since["size"] < second["base"]["size"] / 10

    before = len(static_server.requests)
    warm = checkout(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)
    served = [path for _, path, _ in static_server.requests[before:]]
    again = checkout(served_origin.git_url, tmp_path / "job3", "--cache-dir", cache)
    fresh = checkout(served_origin.git_url, tmp_path / "fresh")  # no cache: the whole chain, fast path

    assert warm["method"] == "http" and warm["apply_path"] == "fast" and warm["final_fetch"] is False
    assert warm["bytes_from_origin"] == 0
    increment_path = f"{second['prefix']}/{since['key']}"
    base_path = f"{second['prefix']}/{second['base']['key']}"
    assert increment_path in served and base_path not in served  # only what the runner lacked
    assert again["method"] == "cache" and again["final_fetch"] is False and again["bytes_from_mirror"] == 0
    assert fresh["apply_path"] == "fast" and fresh["final_fetch"] is False
    for job in ("job2", "job3", "fresh"):
        assert_same_as_git_clone(tmp_path / job, served_origin.git_url, tmp_path)


def test_unusable_increment_still_ends_in_a_clone_equal_to_git_clone(served_origin, static_server, tmp_path):
    cache = tmp_path / "cache"
    first, second = runner_one_release_behind(served_origin, static_server, tmp_path, cache)
    static_server.reset()
    static_server.faults[f"{second['prefix']}/{second['increment']['key']}"] = Fault(status=404)

    warm = checkout(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)

    assert warm["fallbacks"] and warm["fallbacks"][0]["method"] == "http"
    assert_same_as_git_clone(tmp_path / "job2", served_origin.git_url, tmp_path)


def test_clone_stays_usable_for_new_commits_with_the_cache(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    cache = tmp_path / "cache"
    checkout(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    checkout(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)
    job = tmp_path / "job2"
    (job / "new.txt").write_text("work\n")
    git(job, "add", "new.txt")
    git(job, "commit", "-qm", "work in a job")
    git(job, "push", "-q", "origin", "HEAD:refs/heads/from-job")
    assert git(served_origin.path, "rev-parse", "from-job") == git(job, "rev-parse", "HEAD")
