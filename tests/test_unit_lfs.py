"""LFS formats and the pieces of the LFS path that need git but no server: pointers, the ref's blob,
the manifest (parsed as hostile input), object URLs, include patterns, tip scans, bounded downloads."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from mirrorci.deadline import Deadline
from mirrorci.errors import SourceFailed, UsageError
from mirrorci.gitcmd import Git
from mirrorci.lfs import require_git_lfs
from mirrorci.lfs.download import Opener, download_object, read_manifest
from mirrorci.lfs.manifest import (
    LfsAdvert,
    LfsManifestError,
    object_url,
    parse_advert,
    parse_manifest,
    render_manifest,
)
from mirrorci.lfs.pointer import Pointer, parse_pointer, pointers_among
from mirrorci.lfs.upload import publish_lfs, scan_tips
from mirrorci.lfs.worktree import include_arguments, present_pointers
from mirrorci.mirrorlist import REF_LFS_HTTP, parse_mirror_blobs
from mirrorci.remote import KNOWN_MIRROR_REFS
from mirrorci.s3config import S3Options
from mirrorci.store import LocalStore
from tests.support.repos import git

OID = hashlib.sha256(b"hello\n").hexdigest()


def pointer_text(data: bytes) -> bytes:
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
            f"size {len(data)}\n").encode()


def advert_for(data: bytes, url: str = "https://mirror.example/r/lfs/manifests/m.json") -> LfsAdvert:
    return LfsAdvert(url, hashlib.sha256(data).hexdigest(), len(data), 1)


# Pointers


def test_a_pointer_is_parsed():
    assert parse_pointer(pointer_text(b"hello\n")) == Pointer(OID, 6)


@pytest.mark.parametrize("data", [
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + OID.encode() + b"\nsize 6",  # no final newline
    b"version https://example.com/spec/v9\noid sha256:" + OID.encode() + b"\nsize 6\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + OID.upper().encode() + b"\nsize 6\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + OID.encode() + b"\nsize -6\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + OID.encode() + b"\nsize 6\nsize 7\n",
    b"version https://git-lfs.github.com/spec/v1\nsize 6\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + OID.encode() + b"\nsize 6\n" + b"x" * 1024,
    b"plain text\n",
])
def test_other_small_files_are_not_pointers(data):
    assert parse_pointer(data) is None


# The ref's blob


def test_the_ref_blob_round_trips_and_is_known():
    advert = LfsAdvert("https://m.example/r/lfs/manifests/x.json", OID, 123, 4)
    assert parse_advert(advert.render()) == advert
    assert REF_LFS_HTTP in KNOWN_MIRROR_REFS
    mirrors = parse_mirror_blobs({REF_LFS_HTTP: advert.render().encode()}, {REF_LFS_HTTP: "a" * 40})
    assert mirrors.lfs == advert and mirrors.warnings == []
    assert mirrors.to_json()["lfs"]["manifest"] == advert.manifest


@pytest.mark.parametrize("text, message", [
    ("[lfs]\n\tversion = 2\n", "unsupported version"),
    (f"[lfs]\n\tversion = 1\n\tsha256 = {OID}\n\tsize = 3\n", "missing key manifest"),
    ("[lfs]\n\tversion = 1\n\tmanifest = https://m/x\n\tsha256 = abc\n\tsize = 3\n", "64 hex digits"),
    (f"[lfs]\n\tversion = 1\n\tmanifest = https://m/x\n\tsha256 = {OID}\n\tsize = 0\n", "size"),
    (f"[lfs]\n\tversion = 1\n\tmanifest = https://m/x\n\tsha256 = {OID}\n\tsize = {1 << 40}\n", "size"),
    (f"[lfs]\n\tversion = 1\n\tmanifest = https://m/x\n\tsha256 = {OID}\n\tsize = many\n", "not a number"),
    ("[lfs\n", "bad section"),
])
def test_a_bad_ref_blob_is_refused(text, message):
    with pytest.raises(LfsManifestError, match=message):
        parse_advert(text)


@pytest.mark.parametrize("url", ["ftp://m.example/x.json", "https://m.example/x y.json", "relative/x.json"])
def test_a_ref_with_an_unusable_url_is_a_warning_not_a_mirror(url):
    blob = LfsAdvert(url, OID, 10).render().encode()
    mirrors = parse_mirror_blobs({REF_LFS_HTTP: blob}, {REF_LFS_HTTP: "a" * 40})
    assert mirrors.lfs is None
    assert len(mirrors.warnings) == 1 and REF_LFS_HTTP in mirrors.warnings[0]


# The manifest


def test_the_manifest_is_canonical_and_checked_against_the_ref():
    data = render_manifest({OID: 6, "b" * 64: 1})
    assert data == render_manifest({"b" * 64: 1, OID: 6})
    manifest = parse_manifest(data, advert_for(data))
    assert manifest.objects == {OID: 6, "b" * 64: 1} and manifest.base == "../objects/"


@pytest.mark.parametrize("body, message", [
    (b'{"version": 1, "base": "../objects/", "objects": {}', "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON|supported version"),
    (b'{"version": 2, "base": "../objects/", "objects": {}}', "supported version"),
    (b'{"version": 1, "objects": {}}', "'base' string"),
    (b'{"version": 1, "base": "../objects/", "objects": {"' + OID.upper().encode() + b'": 6}}', "bad entry"),
    (b'{"version": 1, "base": "../objects/", "objects": {"' + OID.encode() + b'": true}}', "bad entry"),
    (b'{"version": 1, "base": "../objects/", "objects": {"' + OID.encode() + b'": -1}}', "bad entry"),
    (b'{"version": 1, "base": "https://elsewhere.example/", "objects": {}}', "relative path"),
    (b'{"version": 1, "base": "//elsewhere.example/x/", "objects": {}}', "relative path"),
    (b'{"version": 1, "base": "/etc/", "objects": {}}', "relative path"),
    (b'{"version": 1, "base": "../o/?x=1", "objects": {}}', "relative path"),
])
def test_a_hostile_manifest_is_refused(body, message):
    with pytest.raises(LfsManifestError, match=message):
        parse_manifest(body, advert_for(body))


def test_a_manifest_that_is_not_the_one_the_ref_names_is_refused():
    data = render_manifest({OID: 6})
    with pytest.raises(LfsManifestError, match="the ref says"):
        parse_manifest(data + b" ", advert_for(data))
    with pytest.raises(LfsManifestError, match="sha256 does not match"):
        parse_manifest(data.replace(b"6", b"7"), advert_for(data))


@pytest.mark.parametrize("manifest_url, expected", [
    ("https://m.example/r/lfs/manifests/m.json", "https://m.example/r/lfs/objects/"),
    ("s3://bucket/pre/r/lfs/manifests/m.json", "s3://bucket/pre/r/lfs/objects/"),
    ("file:///srv/store/r/lfs/manifests/m.json", "file:///srv/store/r/lfs/objects/"),
    ("https://m.example/m.json?sig=1", "https://m.example/objects/"),  # the query is the manifest's only
])
def test_object_urls_are_resolved_against_the_manifest(manifest_url, expected):
    assert object_url(manifest_url, "../objects/", OID) == f"{expected}{OID[:2]}/{OID[2:4]}/{OID}"


def test_a_base_cannot_climb_above_the_host():
    assert object_url("https://m.example/a/m.json", "../../../../x/", OID).startswith("https://m.example/x/")


# Include patterns for origin's LFS server


def test_include_patterns_name_exactly_the_given_paths():
    assert include_arguments([b"a.bin", b"d/we*ird[1].bin", b"d/a,b.bin", "ü/x.bin".encode()]) == [
        "/a.bin,/d/we\\*ird\\[1\\].bin,/d/a?b.bin,/ü/x.bin"]


def test_many_include_patterns_are_split_into_short_arguments():
    chunks = include_arguments([f"dir/file-{i:06d}.bin".encode() for i in range(20_000)])
    assert len(chunks) > 1 and all(len(c) <= 60_000 for c in chunks)
    assert sum(len(c.split(",")) for c in chunks) == 20_000


# Scanning trees (git only, no git-lfs needed)


def make_repo(path: Path, files: dict[str, bytes]) -> Path:
    git(path.parent, "init", "-q", "-b", "main", str(path))
    for rel, data in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "files")
    return path


def test_the_tips_trees_are_scanned_not_their_history(tmp_path):
    repo = make_repo(tmp_path / "r", {"old.bin": pointer_text(b"old\n"), "a.txt": b"text\n"})
    git(repo, "rm", "-q", "old.bin")
    (repo / "new.bin").write_bytes(pointer_text(b"new\n"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "new")
    git(repo, "tag", "-a", "v1", "-m", "tag")
    (repo / "big.bin").write_bytes(os.urandom(4096))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "big")

    scan = scan_tips(Git(repo))

    assert scan.pointers == {hashlib.sha256(b"new\n").hexdigest(): 4}
    assert scan.attributes is False
    assert scan.commits == sorted([git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "v1^{commit}")])


def test_lfs_attributes_alone_make_the_tips_use_lfs(tmp_path):
    repo = make_repo(tmp_path / "r", {"sub/.gitattributes": b"*.psd filter=lfs diff=lfs merge=lfs -text\n"})
    scan = scan_tips(Git(repo))
    assert scan.attributes is True and scan.pointers == {}


def test_publish_refuses_an_unknown_mode(tmp_path):
    repo = make_repo(tmp_path / "r", {"a.txt": b"a\n"})
    with pytest.raises(UsageError, match="--lfs must be one of"):
        publish_lfs("sometimes", Git(repo), Git(repo), LocalStore(tmp_path / "s"), "r", None, None)


def test_publish_auto_without_lfs_writes_nothing(tmp_path):
    repo = make_repo(tmp_path / "r", {"a.txt": b"a\n"})
    published = publish_lfs("auto", Git(repo), Git(repo), LocalStore(tmp_path / "s"), "r", None, None)
    assert published.refs == {} and published.summary["published"] is False
    assert not (tmp_path / "s").exists()


def test_present_pointers_respect_a_sparse_checkout(tmp_path):
    repo = make_repo(tmp_path / "r", {"in/a.bin": pointer_text(b"a\n"), "out/b.bin": pointer_text(b"b\n"),
                                      "in/link": b"", "in/text.txt": b"not a pointer\n"})
    (repo / "in" / "link").unlink()
    (repo / "in" / "link").symlink_to("a.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "symlink")
    git(repo, "sparse-checkout", "set", "in")

    found = present_pointers(Git(repo))

    assert found == {b"in/a.bin": Pointer(hashlib.sha256(b"a\n").hexdigest(), 2)}


def test_pointers_among_ignores_ids_that_are_not_pointer_blobs(tmp_path):
    repo = make_repo(tmp_path / "r", {"a.bin": pointer_text(b"a\n")})
    blob = git(repo, "rev-parse", "HEAD:a.bin")
    found = pointers_among(Git(repo), [blob, git(repo, "rev-parse", "HEAD"), "not-an-id", "0" * 40])
    assert list(found) == [blob]


# Bounded downloads (file:// URLs, allowed explicitly)


def opener(allow: bool = True) -> Opener:
    return Opener(Deadline(30, 5), allow, S3Options())


def test_an_object_is_checked_and_renamed_into_the_lfs_storage(tmp_path):
    (tmp_path / "obj").write_bytes(b"hello\n")
    media = tmp_path / "lfs" / "objects"
    download_object(opener(), f"file://{tmp_path}/obj", OID, 6, media, lambda n: None)
    assert (media / OID[:2] / OID[2:4] / OID).read_bytes() == b"hello\n"
    assert list((tmp_path / "lfs" / "tmp").iterdir()) == []


@pytest.mark.parametrize("content, message", [
    (b"hello\n!", "more than the 6 bytes"),
    (b"hell\n", "5 bytes, its pointer says 6"),
    (b"HELLO\n", "sha256 does not match"),
])
def test_a_bad_object_leaves_nothing_behind(tmp_path, content, message):
    (tmp_path / "obj").write_bytes(content)
    media = tmp_path / "lfs" / "objects"
    with pytest.raises(SourceFailed, match=message):
        download_object(opener(), f"file://{tmp_path}/obj", OID, 6, media, lambda n: None)
    assert not (media / OID[:2] / OID[2:4] / OID).exists()
    assert list((tmp_path / "lfs" / "tmp").iterdir()) == []


def test_file_urls_need_to_be_allowed(tmp_path):
    data = render_manifest({OID: 6})
    (tmp_path / "m.json").write_bytes(data)
    advert = advert_for(data, f"file://{tmp_path}/m.json")
    assert read_manifest(advert, opener()).objects == {OID: 6}
    with pytest.raises(SourceFailed, match="--allow-file-urls"):
        read_manifest(advert, opener(allow=False))


def test_a_manifest_longer_than_the_ref_says_is_not_read_to_the_end(tmp_path):
    data = render_manifest({OID: 6})
    (tmp_path / "m.json").write_bytes(data + b" " * 1000)
    with pytest.raises(SourceFailed, match="more than the"):
        read_manifest(advert_for(data, f"file://{tmp_path}/m.json"), opener())


def test_without_git_lfs_the_error_says_to_install_it(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "git").symlink_to(str(shutil.which("git")))
    with pytest.raises(UsageError, match="install git-lfs") as caught:
        require_git_lfs(Git(tmp_path, env={"PATH": str(tmp_path / "bin")}))
    assert caught.value.exit_code == 2
