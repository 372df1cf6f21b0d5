"""Unit tests for the chain of bundles: the list's chain()/plan(), increments, stores' list/delete, retention."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import pytest

from mirrorci import bundle, chain, retention
from mirrorci.gitcmd import Git
from mirrorci.mirrorlist import BundleEntry, BundleList, parse_bundle_list
from mirrorci.store import LocalStore
from mirrorci.torrent.publishing import retain
from tests.support.repos import git


def sha(n: int) -> str:
    return f"{n:064x}"


def entry(n: int, token: int, parent: int | None = None, base: int | None = None, **changes) -> BundleEntry:
    e = BundleEntry(id=f"b{n}", uri=f"https://h.example/{n}.bundle", creation_token=token, sha256=sha(n), size=100 * n,
                    pack_checksum="f" * 40, header_size=50, idx_uri=f"https://h.example/{n}.idx",
                    idx_sha256=sha(1000 + n), idx_size=10)
    if parent is not None:
        e = dataclasses.replace(e, parent_sha256=sha(parent), base_sha256=sha(base if base is not None else 1))
    return dataclasses.replace(e, **changes)


def linear(n: int) -> list[BundleEntry]:
    """Base 1 (token 10), then increments 2..n, each on the one before, tokens 11, 12, ..."""
    return [entry(1, 10)] + [entry(i, 9 + i, parent=i - 1) for i in range(2, n + 1)]


# --- BundleList.chain / plan ------------------------------------------------------------------


def test_chain_is_ordered_by_links_whatever_the_list_order():
    elements = linear(5)
    shuffled = BundleList(bundles=[elements[3], elements[0], elements[4], elements[2], elements[1]])
    assert [e.sha256 for e in shuffled.chain()] == [e.sha256 for e in elements]
    assert shuffled.newest() == elements[0]


def test_parent_sha256_round_trips_and_is_rendered_as_parentSha256():
    text = BundleList(bundles=linear(3)).render()
    assert f"parentSha256 = {sha(2)}" in text and f"baseSha256 = {sha(1)}" in text
    parsed = parse_bundle_list(text)
    assert parsed.bundles == linear(3) and [e.sha256 for e in parsed.chain()] == [sha(1), sha(2), sha(3)]


@pytest.mark.parametrize("broken,expected", [
    ("missing parent", 2),  # increment 3 is gone: 4 and 5 hang on nothing
    ("token not increasing", 3),  # increment 4 has a token below 3's
    ("other base", 3),  # increment 4 names another base
    ("other object format", 3),
])
def test_broken_links_give_the_longest_valid_prefix(broken, expected):
    elements = linear(5)
    if broken == "missing parent":
        del elements[2]
    elif broken == "token not increasing":
        elements[3] = dataclasses.replace(elements[3], creation_token=5)
    elif broken == "other base":
        elements[3] = dataclasses.replace(elements[3], base_sha256=sha(99))
    else:
        elements[3] = dataclasses.replace(elements[3], object_format="sha256")
    got = BundleList(bundles=elements).chain()
    assert [e.sha256 for e in got] == [sha(i) for i in range(1, expected + 1)]


def test_hostile_lists_never_raise():
    loop = [entry(1, 10), entry(2, 11, parent=3), entry(3, 12, parent=2)]  # 2 and 3 point at each other
    assert [e.sha256 for e in BundleList(bundles=loop).chain()] == [sha(1)]
    self_parent = [entry(1, 10), entry(2, 11, parent=2)]
    assert len(BundleList(bundles=self_parent).chain()) == 1
    assert BundleList(bundles=[entry(2, 11, parent=1)]).chain() == []  # no base at all
    assert BundleList().chain() == [] and BundleList().plan(lambda s: True) == []
    same_sha = [entry(1, 10), entry(1, 11, parent=1)]  # an "increment" that is the base again
    assert len(BundleList(bundles=same_sha).chain()) == 1
    fork = [entry(1, 10), entry(2, 12, parent=1), entry(3, 11, parent=1), entry(4, 13, parent=2)]
    assert [e.sha256 for e in BundleList(bundles=fork).chain()] == [sha(1), sha(3)]  # the earliest child, then none


def test_chain_starts_from_the_newest_base():
    old = [entry(1, 10), entry(2, 11, parent=1)]
    new_base = entry(7, 20)
    assert [e.sha256 for e in BundleList(bundles=[*old, new_base]).chain()] == [sha(7)]


def test_old_format_thin_increment_is_not_part_of_the_chain():
    thin = dataclasses.replace(entry(2, 9), base_sha256=sha(1), idx_uri="", idx_sha256="", pack_checksum="")
    listed = BundleList(bundles=[entry(1, 10), thin])
    assert [e.sha256 for e in listed.chain()] == [sha(1)]


@pytest.mark.parametrize("have,expected", [
    (set(), [1, 2, 3, 4]),  # a fresh runner: the whole chain
    ({1}, [2, 3, 4]),
    ({1, 2, 3}, [4]),
    ({3}, [4]),  # the last one held counts, whatever is missing before it
    ({1, 4}, []),  # current
    ({99}, [1, 2, 3, 4]),  # holds something the list does not name
])
def test_plan(have, expected):
    listed = BundleList(bundles=linear(4))
    assert [e.sha256 for e in listed.plan(lambda s: s in {sha(i) for i in have})] == [sha(i) for i in expected]


# --- increments -----------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    for i in range(3):
        (path / "file.txt").write_text("".join(f"line {j}\n" for j in range(200 + i)))
        git(path, "add", ".")
        git(path, "commit", "-qm", f"commit {i}")
    git(path, "tag", "-a", "v1", "-m", "release 1")
    return path


def advance(repo: Path, n: int = 1) -> None:
    for i in range(n):
        text = (repo / "file.txt").read_text()
        (repo / "file.txt").write_text(text + f"more {i} {time.time_ns()}\n")
        git(repo, "commit", "-qam", f"advance {i}")


def split_pack(path: Path, header: bundle.BundleHeader, dest: Path) -> Path:
    bundle.copy_pack(path, header, dest)
    return dest


def test_increment_is_not_thin_and_verifies_where_its_prerequisites_are(repo, tmp_path):
    g = Git(repo / ".git")
    before = bundle.current_refs(g, bundle.bundle_refnames(g))
    old = tmp_path / "old.git"
    git(tmp_path, "clone", "-q", "--mirror", str(repo), str(old))
    advance(repo, 3)
    git(repo, "tag", "-a", "v2", "-m", "release 2")
    now = bundle.current_refs(g, bundle.bundle_refnames(g))

    made = chain.build_increment(g, tmp_path / "inc.bundle", now, before, "sha1")

    assert isinstance(made, chain.Increment) and made.objects > 0
    assert sorted(made.header.refs) == sorted(now)
    # prerequisites: the previous tips peeled to commits (the v1 tag object is not one)
    old_head = dict((r, o) for o, r in before)["HEAD"]
    assert set(made.header.prerequisites) == {git(repo, "rev-parse", "v1^{commit}"), old_head}
    git(old, "bundle", "verify", str(made.path))
    pack = split_pack(made.path, made.header, tmp_path / "inc.pack")
    empty = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(empty))
    # no --fix-thin, in a repository that has none of the prerequisites: the pack stands alone
    subprocess.run(["git", "index-pack", "--stdin"], cwd=empty, stdin=pack.open("rb"), check=True, capture_output=True)
    git(old, "fetch", "-q", str(made.path), "refs/heads/main:refs/heads/main", "refs/tags/v2:refs/tags/v2")
    assert git(old, "rev-parse", "main") == git(repo, "rev-parse", "main")
    assert subprocess.run(["git", "fsck", "--strict"], cwd=old, capture_output=True).returncode == 0


def test_git_bundle_create_would_have_been_thin(repo, tmp_path):
    """The reason for writing increments ourselves: git's own incremental bundle needs --fix-thin."""
    g = Git(repo / ".git")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "file.txt").write_text((repo / "file.txt").read_text() + "one more line\n")
    git(repo, "commit", "-qam", "small change to a big file")
    thin = tmp_path / "thin.bundle"
    git(repo, "bundle", "create", "-q", str(thin), "main", f"^{base}")
    header = bundle.read_header_file(thin)
    empty = tmp_path / "e.git"
    git(tmp_path, "init", "-q", "--bare", str(empty))
    pack = split_pack(thin, header, tmp_path / "thin.pack")
    proc = subprocess.run(["git", "index-pack", "--stdin"], cwd=empty, stdin=pack.open("rb"), capture_output=True)
    assert proc.returncode != 0
    ours = chain.build_increment(g, tmp_path / "ours.bundle", [(git(repo, "rev-parse", "main"), "refs/heads/main")],
                                 [(base, "refs/heads/main")], "sha1")
    assert isinstance(ours, chain.Increment)
    pack = split_pack(ours.path, ours.header, tmp_path / "ours.pack")
    subprocess.run(["git", "index-pack", "--stdin"], cwd=empty, stdin=pack.open("rb"), check=True, capture_output=True)


def test_increment_with_no_new_objects_has_an_empty_pack(repo, tmp_path):
    g = Git(repo / ".git")
    refs = bundle.current_refs(g, bundle.bundle_refnames(g))
    git(repo, "branch", "same-commit")
    current = bundle.current_refs(g, bundle.bundle_refnames(g))
    made = chain.build_increment(g, tmp_path / "i.bundle", current, refs, "sha1")
    assert isinstance(made, chain.Increment) and made.objects == 0


def test_increment_after_history_was_rewritten_is_refused(repo, tmp_path):
    g = Git(repo / ".git")
    gone = [("1" * 40, "refs/heads/main")]
    current = bundle.current_refs(g, ["refs/heads/main"])
    assert "is in the repository" in chain.build_increment(g, tmp_path / "i.bundle", current, gone, "sha1")


def test_a_deleted_branch_is_no_prerequisite(repo, tmp_path):
    g = Git(repo / ".git")
    before = bundle.current_refs(g, bundle.bundle_refnames(g)) + [("2" * 40, "refs/heads/deleted")]
    advance(repo)
    current = bundle.current_refs(g, bundle.bundle_refnames(g))
    made = chain.build_increment(g, tmp_path / "i.bundle", current, before, "sha1")
    assert isinstance(made, chain.Increment) and "2" * 40 not in made.header.prerequisites
    assert made.objects == 3  # commit, tree, blob: the rest is under the tips that are still there


def test_sha256_repositories_get_a_v3_header(tmp_path):
    path = tmp_path / "r256"
    git(tmp_path, "init", "-q", "--object-format=sha256", "-b", "main", str(path))
    (path / "file.txt").write_text("a\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "one")
    g = Git(path / ".git")
    before = bundle.current_refs(g, ["refs/heads/main"])
    advance(path)
    current = bundle.current_refs(g, ["refs/heads/main"])
    made = chain.build_increment(g, tmp_path / "i.bundle", current, before, "sha256")
    assert isinstance(made, chain.Increment)
    assert made.path.read_bytes().startswith(b"# v3 git bundle\n@object-format=sha256\n")
    assert made.header.object_format == "sha256" and made.objects == 3


def test_collapse_reasons():
    current = chain.Current(elements=[entry(1, 10, size=1000)] + [entry(i, 9 + i, parent=i - 1, size=100)
                                                                   for i in range(2, 5)])
    assert chain.length_reason(current, 3) == "chain length 3 reached (--max-chain 3)"
    assert chain.length_reason(current, 4) == ""
    assert chain.length_reason(current, 0).startswith("chain length 3")
    assert chain.weight_reason(current, 200, 0.5) == ""  # 300 + 200 = 500 = half the base
    assert "over --collapse-fraction 0.5" in chain.weight_reason(current, 201, 0.5)


# --- stores: list and delete; retention -------------------------------------------------------


def put(store: LocalStore, key: str, age: float = 0.0) -> None:
    store.put_bytes(key, b"x" * 10, "application/octet-stream")
    if age:
        path = store.root / key
        t = time.time() - age
        os.utime(path, (t, t))


def test_local_store_lists_with_sizes_and_times_and_deletes(tmp_path):
    store = LocalStore(tmp_path / "s")
    put(store, "m/bundles/a.bundle", age=100)
    put(store, "m/bundles/b.idx")
    put(store, "m/bundle-list")
    put(store, "mm/bundles/c.bundle")
    listed = store.list("m/bundles/")
    assert [o.key for o in listed] == ["m/bundles/a.bundle", "m/bundles/b.idx"]
    assert all(o.size == 10 for o in listed) and listed[0].modified < listed[1].modified - 50
    assert store.list("nothing/here/") == []
    assert store.delete(["m/bundles/a.bundle", "m/bundles/never-was"]) == {}
    assert [o.key for o in store.list("m/")] == ["m/bundle-list", "m/bundles/b.idx"]
    assert "escapes" in store.delete(["../outside"])["../outside"]


def test_prune_keeps_referenced_young_and_other_names(tmp_path):
    store = LocalStore(tmp_path / "s")
    listed = BundleList(bundles=linear(2))
    for n in (1, 2):
        put(store, chain.bundle_key("m", sha(n)), age=10_000)
        put(store, chain.idx_key("m", sha(n)), age=10_000)
    put(store, chain.bundle_key("m", sha(3)), age=10_000)  # unreferenced, old: goes
    put(store, chain.torrent_key("m", sha(3)), age=10_000)
    put(store, chain.bundle_key("m", sha(4)), age=10)  # unreferenced, young: stays
    put(store, chain.bundle_key("other", sha(5)), age=10_000)  # another mirror's: never looked at
    put(store, "m/bundle-list", age=10_000)
    put(store, "m/bundles/.x.bundle.tmp", age=10_000)  # a crashed upload's leftover: goes

    result = retention.prune(store, "m", retention.referenced_keys("m", [listed, None]), grace=3600)

    assert sorted(result["deleted"]) == sorted([chain.bundle_key("m", sha(3)), chain.torrent_key("m", sha(3)),
                                                "m/bundles/.x.bundle.tmp"])
    assert result["kept_referenced"] == 4 and result["kept_young"] == 1 and result["failed"] == {}
    left = {o.key for o in store.list("")}
    assert chain.bundle_key("other", sha(5)) in left and "m/bundle-list" in left
    assert chain.bundle_key("m", sha(4)) in left
    assert retention.prune(store, "m", set(), grace=0)["deleted"]  # grace 0: everything unreferenced


def test_a_store_that_cannot_delete_is_a_warning(tmp_path, capsys):
    class NoDelete(LocalStore):
        def delete(self, keys):
            raise PermissionError("denied")

    store = NoDelete(tmp_path / "s")
    put(store, chain.bundle_key("m", sha(3)), age=10_000)
    result = retention.prune(store, "m", set(), grace=0)
    assert result["deleted"] == [] and chain.bundle_key("m", sha(3)) in result["failed"]
    assert "could not delete 1" in capsys.readouterr().err


@dataclasses.dataclass
class _Torrent:
    hash: str
    id: int
    labels: list[str]
    added: float


class _Daemon:
    """Records removals; retain() only needs list() and remove()."""

    def __init__(self, torrents: list[_Torrent]) -> None:
        self.torrents = torrents
        self.removed: list[tuple[str, bool]] = []

    def list(self) -> list[_Torrent]:
        return list(self.torrents)

    def remove(self, info_hash: str, delete_data: bool) -> None:
        self.removed.append((info_hash, delete_data))


def test_daemon_retention_follows_the_store_rule():
    now = 1_000_000.0
    daemon = _Daemon([
        _Torrent("new", 1, ["mirrorci", "mirrorci:m"], now - 5),
        _Torrent("previous", 2, ["mirrorci", "mirrorci:m"], now - 50_000),
        _Torrent("old", 3, ["mirrorci", "mirrorci:m", "mirrorci-fetched"], now - 90_000),
        _Torrent("young", 4, ["mirrorci", "mirrorci:m"], now - 100),
        _Torrent("other-mirror", 5, ["mirrorci", "mirrorci:x"], now - 90_000),
        _Torrent("not-ours", 6, [], now - 90_000),
    ])
    assert retain(daemon, "mirrorci:m", {"new", "previous"}, grace=3600, now=now) == ["old"]
    assert daemon.removed == [("old", True)]
    daemon.removed.clear()
    assert retain(daemon, "mirrorci:m", {"new"}, grace=0, newest=2, now=now) == ["previous", "old"]


def test_current_checks_every_element_against_the_store(repo, tmp_path):
    g = Git(repo / ".git")
    store = LocalStore(tmp_path / "s")
    base_path = tmp_path / "base.bundle"
    header = bundle.create(g, base_path, bundle.bundle_refnames(g))
    digest = bundle.file_sha256(base_path)
    base = BundleEntry(id="m-base", uri="https://h.example/b", creation_token=10, sha256=digest,
                       size=base_path.stat().st_size, header_size=header.size)
    listed = BundleList(bundles=[base])
    expected = f"bundle {digest[:12]} of the current list is not in this store"
    assert chain.current(store, "m", listed, "sha1", 16).reason == expected
    store.put_file(chain.bundle_key("m", digest), base_path, "application/x-git-bundle")
    ok = chain.current(store, "m", listed, "sha1", 16)
    assert ok.usable and sorted(ok.tips) == sorted(header.refs)
    assert "sha1" in chain.current(store, "m", listed, "sha256", 16).reason
    lying = BundleList(bundles=[dataclasses.replace(base, header_size=header.size + 1)])
    assert "cannot be read" in chain.current(store, "m", lying, "sha1", 16).reason
    too_long = BundleList(bundles=[base] + [entry(i, 10 + i, parent=i - 1 if i > 2 else None, base=None)
                                            for i in range(2, 5)])
    for e in too_long.bundles[1:]:
        e.base_sha256 = digest
    too_long.bundles[1].parent_sha256 = digest
    assert chain.current(store, "m", too_long, "sha1", 2).reason == "chain length 3 reached (--max-chain 2)"
    assert chain.current(store, "m", None, "sha1", 2).reason == "no bundle list yet"
