"""Self-hosted runners: a cache directory kept between jobs makes later checkouts cheap."""

from __future__ import annotations

from tests.support.repos import advance_origin, git
from tests.test_e2e_checkout import assert_same_as_git_clone, checkout, publish_to_static


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


def test_new_release_is_downloaded_once_then_served_from_the_cache(served_origin, static_server, tmp_path):
    cache = tmp_path / "cache"
    publish_to_static(served_origin, static_server, tmp_path)
    checkout(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    advance_origin(served_origin.path, tmp_path / "advance")
    (tmp_path / "again").mkdir()
    publish_to_static(served_origin, static_server, tmp_path / "again")

    second = checkout(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)
    third = checkout(served_origin.git_url, tmp_path / "job3", "--cache-dir", cache)

    assert second["method"] == "http" and second["final_fetch"] is False
    assert third["method"] == "cache" and third["final_fetch"] is False and third["bytes_from_mirror"] == 0
    for job in ("job2", "job3"):
        assert_same_as_git_clone(tmp_path / job, served_origin.git_url, tmp_path)


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
