"""What a mirror host can answer besides bytes: redirects, errors, and lists that contradict themselves."""

from __future__ import annotations

import pytest

from mirrorci.mirrorlist import REF_BUNDLE_HTTP, BundleList
from tests.attacks.helpers import (
    assert_accounted,
    assert_equals_git_clone,
    assert_mirror_not_used,
    checkout_ok,
    entry_for,
    publish_bundle,
    set_mirror_blob,
)
from tests.support.hostile_server import Reply


@pytest.mark.parametrize("target", ["file", "ftp", "data"])
def test_redirect_to_another_scheme_is_not_followed(served_origin, hostile, legit, tmp_path, target):
    """Even with --allow-file-urls, which is about the list's own URLs: a mirror cannot reach the runner's files."""
    local = tmp_path / "local.bundle"
    local.write_bytes(legit.bundle)
    location = {"file": f"file://{local}", "ftp": "ftp://127.0.0.1:1/b.bundle", "data": "data:,x"}[target]
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    hostile.serve("/b.bundle", Reply(status=302, headers={"Location": location}))

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--allow-file-urls")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


def test_redirect_loop(served_origin, hostile, legit, tmp_path):
    entry = publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    hostile.serve("/b.bundle", Reply(status=302, headers={"Location": entry.uri}))

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


@pytest.mark.parametrize("status", [200, 206, 500])
def test_odd_answers(served_origin, hostile, legit, tmp_path, status):
    """Empty or wrong-length answers under any status, a Range reply to no Range request included."""
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    hostile.serve("/b.bundle", Reply(status=status, body=legit.bundle[:1000],
                                     headers={"Content-Range": f"bytes 0-999/{len(legit.bundle)}"}))

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


def test_duplicate_bundle_ids(served_origin, hostile, legit, forgeries, tmp_path):
    """Two sections with one id: git's config rules merge them key by key, mixing the legit and the forged entry."""
    forgery = forgeries("subtree")
    good = entry_for(hostile, "b", legit.bundle, legit.idx)
    evil = entry_for(hostile, "evil", forgery.bundle, forgery.forged_idx, id="b")
    text = BundleList(bundles=[good]).render() + BundleList(bundles=[evil]).render().split("\n", 4)[-1]
    assert text.count('[bundle "b"]') == 2
    set_mirror_blob(served_origin.path, REF_BUNDLE_HTTP, text)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_accounted(result)


def test_list_of_many_bundles_is_not_a_download_storm(served_origin, hostile, legit, tmp_path):
    """A list naming thousands of bundles costs at most a couple of downloads before the fallback."""
    junk = b"# v2 git bundle\n\nPACK" + bytes(40)
    entries = [entry_for(hostile, f"b{n}", junk, None, creation_token=n + 1) for n in range(2000)]
    set_mirror_blob(served_origin.path, REF_BUNDLE_HTTP, BundleList(bundles=entries).render())

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert len(hostile.requests) <= 4, f"{len(hostile.requests)} requests to the mirror"
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)
