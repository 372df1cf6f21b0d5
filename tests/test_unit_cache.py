"""The runner cache (mirrorci.cache.ObjectCache) against real git repositories in a temp dir."""

from __future__ import annotations

import fcntl
import hashlib
import zlib
from pathlib import Path

import pytest

from mirrorci import cache
from mirrorci.cache import ObjectCache
from tests.support.repos import git

URL = "https://example.invalid/team/repo.git"


def make_clone(path: Path, *contents: str) -> tuple[Path, dict[str, str]]:
    """A repository with one commit per content, packed into a single pack; (its .git, its tips)."""
    git(path.parent, "init", "-q", "-b", "main", str(path))
    for i, content in enumerate(contents):
        (path / "file.txt").write_text(content)
        git(path, "add", "file.txt")
        git(path, "commit", "-qm", f"commit {i}")
    git(path, "repack", "-a", "-d", "-q")
    return path / ".git", {"refs/remotes/origin/main": git(path, "rev-parse", "HEAD")}


def packs(objects: Path) -> list[str]:
    return sorted(p.name for p in (objects / "pack").glob("pack-*.pack"))


def cached_refs(oc: ObjectCache) -> dict[str, str]:
    lines = git(oc.repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return dict(line.split() for line in lines)


def lock_is_free(root: Path) -> bool:
    """Whether another open file could take the cache's lock right now (flock locks per open file)."""
    with (root / "lock").open("a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(other, fcntl.LOCK_UN)
        return True


def write_corrupt_object(objects: Path, content: bytes) -> str:
    """A loose object stored under an id that its content does not hash to; that id."""
    real = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    wrong = hashlib.sha1(b"not " + real.encode()).hexdigest()
    target = objects / wrong[:2] / wrong[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(zlib.compress(b"blob %d\0" % len(content) + content))
    return wrong


def test_locked_creates_a_bare_repository_and_holds_the_lock_until_the_block_ends(tmp_path):
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked() as held:
        assert held is oc
        assert git(oc.repo, "rev-parse", "--is-bare-repository") == "true"
        assert git(oc.repo, "config", "gc.auto") == "0"
        assert not lock_is_free(oc.root)
    assert lock_is_free(oc.root)


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    oc = ObjectCache(tmp_path / "cache")
    with pytest.raises(RuntimeError), oc.locked():
        raise RuntimeError("job failed")
    assert lock_is_free(oc.root)


def test_a_relative_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    oc = ObjectCache(Path("cache"))
    assert oc.root == tmp_path / "cache" and oc.objects_dir == tmp_path / "cache" / "objects.git" / "objects"


def test_absorb_links_the_packs_keeps_the_tips_and_records_the_bundles(tmp_path):
    git_dir, tips = make_clone(tmp_path / "clone", "one", "two")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        assert not oc.has_bundle("a" * 64)
        assert oc.absorb(git_dir, URL, tips, ["a" * 64]) == 1

        assert packs(oc.objects_dir) == packs(git_dir / "objects")
        name = packs(oc.objects_dir)[0]
        assert (oc.objects_dir / "pack" / name).stat().st_ino == (git_dir / "objects/pack" / name).stat().st_ino
        refs = cached_refs(oc)
        assert list(refs.values()) == [tips["refs/remotes/origin/main"]]
        (ref,) = refs
        assert ref.startswith("refs/cached/") and ref.endswith("/remotes/origin/main")
        assert oc.has_bundle("a" * 64) and not oc.has_bundle("b" * 64)
        git(oc.repo, "fsck", "--strict", "--no-dangling")

        assert oc.absorb(git_dir, URL, tips, ["a" * 64]) == 0  # nothing new
        assert (oc.root / "applied-bundles").read_text().split() == ["a" * 64]


def test_absorb_drops_tips_the_remote_no_longer_has_and_keeps_other_remotes(tmp_path):
    git_dir, tips = make_clone(tmp_path / "clone", "one")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        oc.absorb(git_dir, URL, {**tips, "refs/tags/v1": tips["refs/remotes/origin/main"]}, [])
        oc.absorb(git_dir, "https://example.invalid/other.git", tips, [])
        oc.absorb(git_dir, URL, tips, [])
        refs = sorted(cached_refs(oc))
    assert len(refs) == 2 and not any(ref.endswith("/tags/v1") for ref in refs)
    assert len({ref.split("/")[2] for ref in refs}) == 2  # one namespace per remote


def test_the_namespace_of_a_remote_ignores_its_credentials(tmp_path):
    git_dir, tips = make_clone(tmp_path / "clone", "one")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        oc.absorb(git_dir, "https://x-access-token:first-secret@example.invalid/r.git", tips, [])
        oc.absorb(git_dir, "https://x-access-token:second-secret@example.invalid/r.git", tips, [])
        refs = list(cached_refs(oc))
    assert len(refs) == 1
    assert "secret" not in refs[0]


def test_absorb_with_replace_makes_the_clone_the_whole_cache(tmp_path):
    old_dir, old_tips = make_clone(tmp_path / "old", "old content")
    new_dir, new_tips = make_clone(tmp_path / "new", "new content")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        oc.absorb(old_dir, URL, old_tips, ["a" * 64])
        assert oc.absorb(new_dir, URL, new_tips, ["b" * 64], replace=True) == 1
        assert packs(oc.objects_dir) == packs(new_dir / "objects")
        assert list(cached_refs(oc).values()) == [new_tips["refs/remotes/origin/main"]]
        assert oc.has_bundle("b" * 64) and not oc.has_bundle("a" * 64)
        assert git(oc.repo, "cat-file", "-t", old_tips["refs/remotes/origin/main"], check=False) == ""


def test_many_packs_are_repacked_into_one(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "REPACK_ABOVE_PACKS", 1)
    first_dir, first_tips = make_clone(tmp_path / "first", "one")
    second_dir, second_tips = make_clone(tmp_path / "second", "two")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        oc.absorb(first_dir, URL, first_tips, [])
        oc.absorb(second_dir, "https://example.invalid/second.git", second_tips, [])
        assert len(packs(oc.objects_dir)) == 1
        for tip in (*first_tips.values(), *second_tips.values()):
            assert git(oc.repo, "cat-file", "-t", tip) == "commit"


def test_lend_and_unlend(tmp_path):
    git_dir, tips = make_clone(tmp_path / "clone", "one")
    oc = ObjectCache(tmp_path / "cache")
    borrower = tmp_path / "borrower.git"
    git(tmp_path, "init", "-q", "--bare", str(borrower))
    tip = tips["refs/remotes/origin/main"]
    with oc.locked():
        oc.absorb(git_dir, URL, tips, [])
        oc.lend_to(borrower)
        assert git(borrower, "cat-file", "-t", tip) == "commit"
        oc.unlend(borrower)
        assert git(borrower, "cat-file", "-t", tip, check=False) == ""  # no such object
        assert not (borrower / "objects/info/alternates").exists()
        oc.unlend(borrower)  # twice is fine


def test_implicated(tmp_path):
    git_dir, tips = make_clone(tmp_path / "clone", "one")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        oc.absorb(git_dir, URL, tips, [])
        assert oc.implicated(None)  # git could not read a pack: assume the cache is at fault
        assert not oc.implicated(tips["refs/remotes/origin/main"])  # held and sound
        assert not oc.implicated("0123456789" * 4)  # not held: not the cache's fault
        assert oc.implicated(write_corrupt_object(oc.objects_dir, b"forged\n"))


def test_quarantine_sets_the_store_aside_and_starts_an_empty_one(tmp_path):
    git_dir, tips = make_clone(tmp_path / "clone", "one")
    oc = ObjectCache(tmp_path / "cache")
    with oc.locked():
        oc.absorb(git_dir, URL, tips, ["a" * 64])
        oc.quarantine("object 1234 does not hash to its id")

        area = oc.root / "quarantine"
        (kept,) = area.glob("objects-*.git")
        assert packs(kept / "objects") == packs(git_dir / "objects")
        assert (area / "REASON").read_text() == "object 1234 does not hash to its id\n"
        assert not oc.has_bundle("a" * 64)
        assert packs(oc.objects_dir) == [] and cached_refs(oc) == {}
        assert git(oc.repo, "rev-parse", "--is-bare-repository") == "true"

        oc.quarantine("the second reason")
        (kept,) = area.glob("objects-*.git")  # one at a time: the earlier one is gone
        assert packs(kept / "objects") == []
        assert (area / "REASON").read_text() == "the second reason\n"
