"""A runner's cache that went bad is quarantined and rebuilt; the checkout falls back instead of failing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.attacks.helpers import assert_accounted, assert_equals_git_clone, checkout_ok, publish_bundle
from tests.support.repos import git


def cache_packs(cache: Path) -> list[Path]:
    return sorted((cache / "objects.git" / "objects" / "pack").glob("pack-*.pack"))


def offset_of(idx: Path, oid: str) -> int:
    """Where ``oid`` starts in the pack that ``idx`` indexes (`git show-index`)."""
    with idx.open("rb") as f:
        listing = subprocess.run(["git", "show-index"], stdin=f, capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        offset, found = line.split()[:2]
        if found == oid:
            return int(offset)
    raise AssertionError(f"{oid} is not in {idx}")


def corrupt(path: Path, at: int, length: int = 64) -> None:
    """Flip bytes in place (the same inode: a hard-linked clone sees it too, as a bad disk would do)."""
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        f.seek(at)
        data = f.read(length)
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in data))


def pack_is_sound(pack: Path) -> bool:
    return subprocess.run(["git", "verify-pack", str(pack.with_suffix(".idx"))], capture_output=True).returncode == 0


@pytest.mark.parametrize("where", ["head-blob", "root-commit"])
def test_corrupt_pack_in_the_cache(served_origin, hostile, legit, tmp_path, where):
    """Issue case 6: 'packed object is corrupt', no fallback, no repair."""
    cache = tmp_path / "cache"
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    checkout_ok(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    packs = cache_packs(cache)
    assert packs, "the cache layout changed: this test corrupts the cache's pack"
    pack = packs[0]
    # A blob the checked-out tree needs, or the oldest commit (only a walk of the history reads it).
    if where == "head-blob":
        oid = git(served_origin.path, "rev-parse", "HEAD:data/big.bin")
    else:
        oid = git(served_origin.path, "rev-list", "--max-parents=0", "main")
    corrupt(pack, offset_of(pack.with_suffix(".idx"), oid) + 4, 16)
    assert not pack_is_sound(pack)

    second = checkout_ok(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)

    assert_equals_git_clone(served_origin.git_url, tmp_path / "job2")
    assert_accounted(second)
    assert all(pack_is_sound(p) for p in cache_packs(cache)), "the corrupt pack is still in the cache"

    third = checkout_ok(served_origin.git_url, tmp_path / "job3", "--cache-dir", cache)

    assert_equals_git_clone(served_origin.git_url, tmp_path / "job3")
    assert third["fallbacks"] == [], "the rebuilt cache is still not usable"


def test_cache_without_its_packs(served_origin, hostile, legit, tmp_path):
    """The cache's packs vanished (a cleanup job), its bookkeeping did not."""
    cache = tmp_path / "cache"
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    checkout_ok(served_origin.git_url, tmp_path / "job1", "--cache-dir", cache)
    for pack in cache_packs(cache):
        pack.unlink()

    result = checkout_ok(served_origin.git_url, tmp_path / "job2", "--cache-dir", cache)

    assert_equals_git_clone(served_origin.git_url, tmp_path / "job2")
    assert_accounted(result)
