"""A mirror can never change what an object id means: forged indexes, cut history, foreign packs.

Each forgery is checked with git's own tools before mirrorci meets it, so a failure
here is mirrorci trusting a lie, not a broken test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.attacks.helpers import (
    assert_accounted,
    assert_equals_git_clone,
    assert_mirror_not_used,
    checkout_ok,
    entry_for,
    publish_bundle,
    publish_list,
)
from tests.support import forge

FORGED_AT_HEAD = ["commit", "root-tree", "subtree"]  # see conftest.FORGERS


@pytest.mark.parametrize("verify", ["auto", "full"])
@pytest.mark.parametrize("target", FORGED_AT_HEAD)
def test_forged_pack_index_is_never_checked_out(served_origin, hostile, forgeries, tmp_path, target, verify):
    """Issue case 1: every published checksum matches, the objects do not hash to their ids."""
    forgery = forgeries(target)
    publish_bundle(served_origin.path, hostile, forgery.bundle, forgery.forged_idx)

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--verify", verify)

    assert hostile.requested("/b.bundle"), "the forged bundle was never even downloaded"
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert not (tmp_path / "co" / forgery.evil_path).exists()
    if verify == "auto":
        assert_mirror_not_used(result)  # the forged index was used: the pack must go, whole
    else:
        # index-pack names every object by its real hash: the swapped originals are simply absent,
        # and may come from origin on top of the mirror's honest objects.
        assert_accounted(result)


def test_forged_old_blob_is_caught_by_full_verification(served_origin, hostile, forgeries, tmp_path):
    """A swapped blob only an old commit holds is outside the default mode's checks, not outside --verify full's."""
    forgery = forgeries("old-blob")
    publish_bundle(served_origin.path, hostile, forgery.bundle, forgery.forged_idx)

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--verify", "full")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


def test_forged_index_does_not_poison_the_cache(served_origin, hostile, legit, forgeries, tmp_path):
    """Issue case 2: after the forged bundle, neither the restored mirror nor --no-mirrors may bring it back."""
    cache = tmp_path / "cache"
    forgery = forgeries("subtree")
    publish_bundle(served_origin.path, hostile, forgery.bundle, forgery.forged_idx, name="forged")

    first = checkout_ok(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    assert_equals_git_clone(served_origin.git_url, tmp_path / "job1")
    assert_mirror_not_used(first)

    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx, name="legit")  # the owner restores the list
    second = checkout_ok(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)
    assert_equals_git_clone(served_origin.git_url, tmp_path / "job2")
    third = checkout_ok(served_origin.git_url, tmp_path / "job3", "--cache-dir", cache, "--no-mirrors")
    assert_equals_git_clone(served_origin.git_url, tmp_path / "job3")
    for result in (second, third):
        assert result["method"] in ("cache", "http", "origin"), result


@pytest.mark.parametrize("flags", [(), ("--no-mirrors",)], ids=["mirrors", "no-mirrors"])
def test_forged_pack_planted_in_the_cache_is_not_trusted(served_origin, hostile, legit, forgeries, tmp_path, flags):
    """A cache whose pack fails verification (written by an older version, or by anyone) is quarantined."""
    cache = tmp_path / "cache"
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    checkout_ok(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    pack_dir = cache / "objects.git" / "objects" / "pack"
    assert list(pack_dir.glob("pack-*.pack")), "the cache layout changed: this test plants its pack there"
    forgery = forgeries("subtree")
    for old in pack_dir.iterdir():
        old.unlink()
    forge.install_pack(cache / "objects.git", forgery.pack.data, forgery.forged_idx)

    result = checkout_ok(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache, *flags)

    assert_equals_git_clone(served_origin.git_url, tmp_path / "job2")
    assert result["fallbacks"] and all(f["reason"] for f in result["fallbacks"]), result


@pytest.mark.parametrize("apply_path", ["fast", "streaming"])
def test_bundle_without_history_is_not_a_clone(served_origin, hostile, tmp_path, apply_path):
    """Issue case 3: tips, their trees and blobs, no ancestors and no prerequisites."""
    bundle, idx = forge.tips_only(served_origin.path, tmp_path / "forge")
    assert len(forge.parse_idx(idx)[0]) < len(forge.all_objects(served_origin.path)), "the pack is not cut"
    publish_bundle(served_origin.path, hostile, bundle, idx if apply_path == "fast" else None)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert hostile.requested("/b.bundle")
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    if result["method"] == "http":
        assert result["final_fetch"] is True, "the missing history can only come from origin"
    else:
        assert_mirror_not_used(result)


def test_index_of_another_valid_pack(served_origin, hostile, legit, tmp_path):
    """The list's idx entries describe a genuine index, of a different pack (another release's)."""
    bundle, other_idx = forge.tips_only(served_origin.path, tmp_path / "other")
    entry = entry_for(hostile, "b", legit.bundle, None)
    other = entry_for(hostile, "other", bundle, other_idx)
    publish_list(served_origin.path, replace(entry, idx_uri=other.idx_uri, idx_sha256=other.idx_sha256,
                                             idx_size=other.idx_size))

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


def test_index_of_another_pack_that_names_this_one(served_origin, hostile, legit, tmp_path):
    """A genuine index of another pack, with the pack checksum it records rewritten to this pack's."""
    bundle, other_idx = forge.tips_only(served_origin.path, tmp_path / "other")
    entries, _ = forge.parse_idx(other_idx)
    lying_idx = forge.render_idx(entries, legit.pack[-forge.HASH_LEN:])
    publish_bundle(served_origin.path, hostile, legit.bundle, lying_idx)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)
