"""Publishing a chain: one base, one increment per publish, collapse, retention; read by native git and mirrorci.

Real stores only: a local directory served by the static HTTP server, and moto_server over HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from mirrorci import chain
from mirrorci.bundle import copy_pack, read_header_file
from mirrorci.mirrorlist import REF_BUNDLE_HTTP, parse_bundle_list
from mirrorci.publish import PublishOptions, publish
from mirrorci.s3config import S3Options
from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout
from tests.support.repos import advance_origin, git
from tests.support.s3_server import s3_client, s3_env


class Repo:
    """A small work repository published with --no-push (refs/mirrors/* are written into it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = 0
        git(path.parent, "init", "-q", "-b", "main", str(path))
        for i in range(8):
            (path / f"big-{i}.txt").write_text("".join(f"line {j} of file {i}, {j * i * 7919 % 10007}\n"
                                                      for j in range(2000)))
        self.commit()
        git(path, "tag", "-a", "v1", "-m", "first release")

    def commit(self, heavy: bool = False) -> None:
        """A small change (a new small file), or with `heavy` one as large as the base (new random data)."""
        self.n += 1
        (self.path / f"new-{self.n}.txt").write_text(f"file {self.n}\n")
        if heavy:
            (self.path / "heavy.bin").write_bytes(os.urandom(self.base_size()))
        git(self.path, "add", ".")
        git(self.path, "commit", "-qm", f"change {self.n}")

    def base_size(self) -> int:
        return sum(p.stat().st_size for p in (self.path / ".git" / "objects").rglob("*") if p.is_file())

    def mirror_list(self) -> str:
        return git(self.path, "cat-file", "blob", REF_BUNDLE_HTTP) + "\n"


def publish_local(repo: Repo, store: str, *, name: str = "m", **options) -> dict:
    """In-process publish (20 of them must take seconds); the CLI itself is exercised by the other tests."""
    return publish(PublishOptions(store=store, repo=repo.path, push=False, name=name, **options))


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


def store_keys(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def assert_pack_stands_alone(bundle_file: Path, tmp_path: Path) -> None:
    """index-pack without --fix-thin, in an empty repository: no delta refers outside the pack."""
    header = read_header_file(bundle_file)
    pack = tmp_path / f"{uuid.uuid4().hex[:8]}.pack"
    copy_pack(bundle_file, header, pack)
    empty = tmp_path / f"empty-{uuid.uuid4().hex[:8]}.git"
    git(tmp_path, "init", "-q", "--bare", str(empty))
    with pack.open("rb") as f:
        proc = subprocess.run(["git", "index-pack", "--stdin"], cwd=empty, stdin=f, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def test_each_publish_adds_one_increment_with_its_own_index(repo, tmp_path):
    store = tmp_path / "store"
    summaries = [publish_local(repo, str(store), collapse_fraction=100)]
    for _ in range(3):
        repo.commit()
        summaries.append(publish_local(repo, str(store), collapse_fraction=100))

    assert [s["published"] for s in summaries] == ["base", "increment", "increment", "increment"]
    assert [s["chain_length"] for s in summaries] == [0, 1, 2, 3]
    listed = parse_bundle_list(repo.mirror_list())
    elements = listed.chain()
    assert [e.sha256 for e in elements] == [c["sha256"] for c in summaries[-1]["chain"]]
    tokens = [e.creation_token for e in elements]
    assert tokens == sorted(set(tokens)) and len(tokens) == 4  # strictly increasing
    base = elements[0]
    assert summaries[-1]["base"]["sha256"] == base.sha256 == summaries[0]["bundle"]["sha256"]
    for before, inc in zip(elements, elements[1:], strict=False):
        assert inc.base_sha256 == base.sha256 and inc.parent_sha256 == before.sha256
        path = store / chain.bundle_key("m", inc.sha256)
        header = read_header_file(path)
        previous_tips = {oid for oid, _ in read_header_file(store / chain.bundle_key("m", before.sha256)).refs}
        peeled = {git(repo.path, "rev-parse", f"{oid}^{{commit}}") for oid in previous_tips}
        assert set(header.prerequisites) == peeled  # the previous element's tips, as commits
        assert inc.has_index and (store / chain.idx_key("m", inc.sha256)).stat().st_size == inc.idx_size
        assert inc.size < base.size
        assert_pack_stands_alone(path, tmp_path)
    # The store's bundle-list is the same list.
    assert (store / "m" / "bundle-list").read_text() == repo.mirror_list()

    again = publish_local(repo, str(store))
    assert again["published"] == "nothing" and "no branch or tag changed" in again["reason"]
    assert repo.mirror_list() == (store / "m" / "bundle-list").read_text()
    assert again["bundle"]["sha256"] == elements[-1].sha256


def test_collapse_by_chain_length_and_by_fraction(repo, tmp_path):
    store = str(tmp_path / "store")
    publish_local(repo, store)
    kinds = []
    for _ in range(4):
        repo.commit()
        kinds.append(publish_local(repo, store, max_chain=2, collapse_fraction=100))
    assert [k["published"] for k in kinds] == ["increment", "increment", "base", "increment"]
    assert kinds[2]["reason"] == "chain length 2 reached (--max-chain 2)"
    assert kinds[2]["chain_length"] == 0 and kinds[3]["chain_length"] == 1
    assert kinds[2]["creation_token"] > kinds[1]["creation_token"]  # git's heuristic takes the new base

    repo.commit(heavy=True)  # a change about as big as the base
    heavy = publish_local(repo, store, collapse_fraction=0.5)
    assert heavy["published"] == "base" and "over --collapse-fraction 0.5" in heavy["reason"]
    assert parse_bundle_list(repo.mirror_list()).chain()[0].sha256 == heavy["bundle"]["sha256"]

    repo.commit()
    assert publish_local(repo, store, max_chain=0)["published"] == "base"  # 0: always a new base


def referenced(root: Path, name: str, lists: list[str]) -> set[str]:
    keys: set[str] = set()
    for text in lists:
        for e in parse_bundle_list(text).bundles:
            keys.update(k for k in chain.artifact_keys(name, e.sha256) if (root / k).exists())
    return keys


def test_twenty_publishes_leave_a_bounded_local_store_and_spare_other_names(repo, tmp_path):
    store = tmp_path / "store"
    other = Repo(tmp_path / "other")
    publish_local(other, str(store), name="m-other")
    publish_local(other, str(store), name="m-other-2")  # a name that merely starts like another
    foreign = store / "unrelated" / "keep.me"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("not a mirror's")
    others = {k for k in store_keys(store) if not k.startswith("m/")}

    lists = []
    for i in range(20):
        repo.commit()
        publish_local(repo, str(store), max_chain=4, collapse_fraction=100, grace=0)
        lists.append(repo.mirror_list())
        ours = {k for k in store_keys(store) if k.startswith("m/bundles/")}
        # exactly what the new and the previous list reference, nothing else
        assert ours == referenced(store, "m", lists[-2:]), f"publish {i + 1}"
        assert len(ours) <= 2 * 2 * (4 + 1)
    assert {k for k in store_keys(store) if not k.startswith("m/")} == others


def test_grace_keeps_young_unreferenced_files(repo, tmp_path):
    store = tmp_path / "store"
    first = publish_local(repo, str(store), max_chain=0)
    repo.commit()
    publish_local(repo, str(store), max_chain=0, grace=3600)
    repo.commit()
    third = publish_local(repo, str(store), max_chain=0, grace=3600)
    first_key = first["bundle"]["key"]
    assert (store / first_key).is_file()  # referenced by no list, but younger than the grace period
    assert third["retention"]["kept_young"] >= 2 and third["retention"]["deleted"] == []
    old = time.time() - 7200
    for suffix in (".bundle", ".idx"):
        os.utime(store / first_key.replace(".bundle", suffix), (old, old))
    repo.commit()
    fourth = publish_local(repo, str(store), max_chain=0, grace=3600)
    assert sorted(fourth["retention"]["deleted"]) == sorted([first_key, first_key.replace(".bundle", ".idx")])


@pytest.fixture
def bucket(moto) -> str:
    name = f"chain-{uuid.uuid4().hex[:8]}"
    s3_client(moto.endpoint_url).create_bucket(Bucket=name)
    return name


def test_twenty_publishes_leave_a_bounded_s3_store(repo, moto, bucket, tmp_path, monkeypatch):
    for key, value in s3_env(moto.endpoint_url).items():
        monkeypatch.setenv(key, value)
    client = s3_client(moto.endpoint_url)
    client.put_object(Bucket=bucket, Key="git/other/bundles/x.bundle", Body=b"another mirror's")
    client.put_object(Bucket=bucket, Key="elsewhere/m/bundles/y.bundle", Body=b"outside the store's prefix")
    s3 = S3Options(addressing_style="path")

    def keys() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    lists = []
    for i in range(20):
        repo.commit()
        summary = publish_local(repo, f"s3://{bucket}/git", settings={"s3": s3}, max_chain=3, collapse_fraction=100,
                                grace=0)
        lists.append(repo.mirror_list())
        ours = {k[len("git/"):] for k in keys() if k.startswith("git/m/bundles/")}
        expected = set()
        for text in lists[-2:]:
            for e in parse_bundle_list(text).bundles:
                expected.update({chain.bundle_key("m", e.sha256), chain.idx_key("m", e.sha256)})
        assert ours == expected, f"publish {i + 1}: {summary['retention']}"
    assert {"git/other/bundles/x.bundle", "elsewhere/m/bundles/y.bundle", "git/m/bundle-list"} <= keys()
    assert summary["retention"]["failed"] == {}


# --- through real servers: native git and mirrorci checkout --------------------------------------


def publish_served(origin, static_server, tmp_path: Path, prefix: str, *extra: str) -> dict:
    work = tmp_path / f"publisher-{uuid.uuid4().hex[:6]}"
    git(tmp_path, "clone", "-q", "--mirror", origin.git_url, str(work))
    result = run_cli("publish", "--repo", work, "--store", static_server.root / prefix,
                     "--public-url", f"{static_server.url}/{prefix}", "--json", *extra)
    return result.json


def push_commit(origin_path: Path, tmp_path: Path, label: str) -> None:
    work = tmp_path / f"push-{uuid.uuid4().hex[:6]}"
    git(tmp_path, "clone", "-q", "--no-local", str(origin_path), str(work))
    (work / f"{label}.txt").write_text(f"{label}\n" * 50)
    git(work, "add", ".")
    git(work, "commit", "-qm", label)
    git(work, "push", "-q", "origin", "HEAD")


def test_native_git_clones_from_a_chain(served_origin, static_server, tmp_path):
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    publish_served(served_origin, static_server, tmp_path, prefix)
    advance_origin(served_origin.path, tmp_path / "advance")
    second = publish_served(served_origin, static_server, tmp_path, prefix, "--collapse-fraction", "100")
    push_commit(served_origin.path, tmp_path, "third")
    third = publish_served(served_origin, static_server, tmp_path, prefix, "--collapse-fraction", "100")
    assert (second["published"], third["published"]) == ("increment", "increment")
    static_server.reset()

    native = tmp_path / "native"
    git(tmp_path, "clone", "-q", f"--bundle-uri={third['bundle_list_url']}", served_origin.git_url, str(native))

    served = {path for _, path, _ in static_server.requests}
    for element in third["chain"]:
        assert f"{prefix}/{chain.bundle_key(third['name'], element['sha256'])}" in served
    bundles = git(native, "for-each-ref", "--format=%(objectname)", "refs/bundles/").split()
    assert git(served_origin.path, "rev-parse", "main") in bundles  # the newest increment was applied
    assert git(native, "rev-parse", "HEAD") == git(served_origin.path, "rev-parse", "HEAD")
    assert subprocess.run(["git", "fsck"], cwd=native, capture_output=True).returncode == 0


def _git_version() -> tuple[int, ...]:
    out = subprocess.run(["git", "version"], capture_output=True, text=True).stdout
    return tuple(int(x) for x in re.findall(r"\d+", out)[:2])


@pytest.mark.skipif(_git_version() < (2, 40), reason=f"git {'.'.join(map(str, _git_version()))} is installed; "
                    "git fetch follows fetch.bundleURI and fetch.bundleCreationToken only from git 2.40 on")
def test_native_git_fetch_downloads_only_the_new_increment(served_origin, static_server, tmp_path):
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    first = publish_served(served_origin, static_server, tmp_path, prefix)
    native = tmp_path / "native"
    git(tmp_path, "clone", "-q", f"--bundle-uri={first['bundle_list_url']}", served_origin.git_url, str(native))
    assert git(native, "config", "fetch.bundleURI") == first["bundle_list_url"]
    advance_origin(served_origin.path, tmp_path / "advance")
    second = publish_served(served_origin, static_server, tmp_path, prefix, "--collapse-fraction", "100")
    assert second["published"] == "increment"
    static_server.reset()

    git(native, "fetch", "-q", "origin")

    bundle_paths = [path for _, path, _ in static_server.requests if path.endswith(".bundle")]
    assert bundle_paths == [f"{prefix}/{second['increment']['key']}"]
    list_bytes = len((static_server.root / prefix / second["name"] / "bundle-list").read_bytes())
    assert static_server.bytes_sent <= second["increment"]["size"] + list_bytes
    assert git(native, "rev-parse", "origin/main") == git(served_origin.path, "rev-parse", "main")


def test_mirrorci_checkout_of_a_chain_matches_git_clone(served_origin, static_server, tmp_path):
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    publish_served(served_origin, static_server, tmp_path, prefix)
    advance_origin(served_origin.path, tmp_path / "advance")
    second = publish_served(served_origin, static_server, tmp_path, prefix, "--collapse-fraction", "100")
    assert second["published"] == "increment"

    result = checkout(served_origin.git_url, tmp_path / "co")

    assert result["method"] == "http", result["fallbacks"]
    assert result["final_fetch"] is False and result["bytes_from_origin"] == 0
    assert result["bytes_from_mirror"] == sum(e["size"] for e in second["chain"])
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_an_increment_keeps_advertising_the_base_torrent(served_origin, static_server, tmp_path):
    pytest.importorskip("torf")
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    first = publish_served(served_origin, static_server, tmp_path, prefix, "--torrent")
    advance_origin(served_origin.path, tmp_path / "advance")
    second = publish_served(served_origin, static_server, tmp_path, prefix, "--torrent", "--collapse-fraction", "100")
    assert second["published"] == "increment"
    assert second["torrent"]["info_hash"] == first["torrent"]["info_hash"]  # the base's, read back from the store
    assert second["torrent"]["key"] == chain.torrent_key(first["name"], first["bundle"]["sha256"])
    for ref in ("refs/mirrors/bundle/torrent", "refs/mirrors/bundle/torrent-magnet"):
        assert second["refs"][ref] == first["refs"][ref]
    assert second["refs_deleted"] == []
