"""Unit tests for mirrorci.bundle: header parsing, creation, pack checksum and index."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from mirrorci import bundle
from mirrorci.bundle import BundleFormatError, BundleHeader, read_header
from mirrorci.errors import MirrorciError
from mirrorci.gitcmd import Git
from tests.support.repos import git

OID1 = "1" * 40
OID2 = "2" * 40
OID256 = "3" * 64


class RecordingGit(Git):
    """A Git that remembers which subcommands it ran."""

    def __init__(self, cwd: Path) -> None:
        super().__init__(cwd)
        self.commands: list[str] = []

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.commands.append(args[0])
        return super().run(*args, **kwargs)


def header_of(data: bytes) -> BundleHeader:
    return read_header(io.BufferedReader(io.BytesIO(data)))


def refs_in(repo: Path, *patterns: str) -> list[tuple[str, str]]:
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", *patterns)
    return [tuple(line.split(" ", 1)) for line in out.splitlines()]  # type: ignore[misc]


@pytest.fixture(scope="module")
def sample_bundle(sample_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BundleHeader]:
    dest = tmp_path_factory.mktemp("bundle") / "sample.bundle"
    g = Git(sample_repo)
    return dest, bundle.create(g, dest, bundle.bundle_refnames(g))


# --- read_header on hand-made headers -----------------------------------------------------


def test_v2_header_fields_and_position():
    head = f"# v2 git bundle\n-{OID1} parent commit\n{OID2} refs/heads/main\n{OID2} HEAD\n\n".encode()
    stream = io.BufferedReader(io.BytesIO(head + b"PACKrest"))
    h = read_header(stream)
    assert (h.version, h.object_format, h.capabilities) == (2, "sha1", {})
    assert h.prerequisites == [OID1]
    assert h.refs == [(OID2, "refs/heads/main"), (OID2, "HEAD")]
    assert h.size == len(head)
    assert h.hash_len == 20
    assert stream.read() == b"PACKrest"


def test_v3_header_with_sha256():
    head = f"# v3 git bundle\n@object-format=sha256\n{OID256} refs/heads/main\n\n".encode()
    h = header_of(head + b"PACK")
    assert (h.version, h.object_format, h.hash_len) == (3, "sha256", 32)
    assert h.capabilities == {"object-format": "sha256"}
    assert h.refs == [(OID256, "refs/heads/main")]


def test_v3_header_without_capabilities_is_sha1():
    h = header_of(f"# v3 git bundle\n{OID1} refs/tags/v1\n\n".encode())
    assert (h.version, h.object_format) == (3, "sha1")


def test_ref_names_with_spaces_are_kept_whole():
    h = header_of(f"# v2 git bundle\n{OID1} refs/heads/odd name\n\n".encode())
    assert h.refs == [(OID1, "refs/heads/odd name")]


@pytest.mark.parametrize("first", [b"", b"# v4 git bundle\n", b"# v2 git bundle \n", b"PACK\x00\x00\x00\x02",
                                   b"#v2 git bundle\n", b"# v2 git bundle\r\n", b"x" * 100])
def test_rejects_bad_signature(first):
    with pytest.raises(BundleFormatError, match="bad signature"):
        header_of(first + f"\n{OID1} refs/heads/main\n\n".encode())


def test_rejects_capability_in_v2():
    with pytest.raises(BundleFormatError, match="capability line in a v2 bundle"):
        header_of(f"# v2 git bundle\n@object-format=sha1\n{OID1} refs/heads/main\n\n".encode())


def test_rejects_unknown_capability_in_v3():
    with pytest.raises(BundleFormatError, match="unknown capability 'future'"):
        header_of(f"# v3 git bundle\n@future=1\n{OID1} refs/heads/main\n\n".encode())


def test_rejects_unknown_object_format():
    with pytest.raises(BundleFormatError, match="unknown object format 'md5'"):
        header_of(f"# v3 git bundle\n@object-format=md5\n{OID1} refs/heads/main\n\n".encode())


@pytest.mark.parametrize("cap", ["@filter=blob:none", "@filter=tree:0"])
def test_rejects_filtered_bundle(cap):
    with pytest.raises(BundleFormatError, match="filtered"):
        header_of(f"# v3 git bundle\n{cap}\n{OID1} refs/heads/main\n\n".encode())


@pytest.mark.parametrize("line", [
    "1111 refs/heads/main",
    ("g" * 40) + " refs/heads/main",
    OID1.upper().replace("1", "A") + " refs/heads/main",
    OID256 + " refs/heads/main",  # sha256 id in a sha1 bundle
    "-" + "1" * 39 + " short prerequisite",
    "-" + "z" * 40,
    "refs/heads/main " + OID1,
])
def test_rejects_bad_oid(line):
    with pytest.raises(BundleFormatError, match="bad object id"):
        header_of(f"# v2 git bundle\n{line}\n\n".encode())


def test_rejects_sha1_id_in_sha256_bundle():
    with pytest.raises(BundleFormatError, match="bad object id"):
        header_of(f"# v3 git bundle\n@object-format=sha256\n{OID1} refs/heads/main\n\n".encode())


@pytest.mark.parametrize("line", [OID1, OID1 + " "])
def test_rejects_ref_line_without_name(line):
    with pytest.raises(BundleFormatError, match="bad ref line"):
        header_of(f"# v2 git bundle\n{line}\n\n".encode())


@pytest.mark.parametrize("data", [
    b"# v2 git bundle\n",
    f"# v2 git bundle\n{OID1} refs/heads/main\n".encode(),
    f"# v2 git bundle\n{OID1} refs/heads/main".encode(),
    f"# v3 git bundle\n@object-format=sha1\n{OID1} refs/heads/ma".encode(),
])
def test_rejects_truncated_header(data):
    with pytest.raises(BundleFormatError, match="ends before its empty line"):
        header_of(data)


def test_rejects_oversize_header(monkeypatch):
    monkeypatch.setattr(bundle, "MAX_HEADER_BYTES", 4096)
    many_refs = "".join(f"{OID1} refs/tags/t{i:05d}\n" for i in range(200))  # ~12 KB of ref lines
    with pytest.raises(BundleFormatError, match="too large"):
        header_of(f"# v2 git bundle\n{many_refs}\n".encode())


def test_rejects_one_endless_line(monkeypatch):
    monkeypatch.setattr(bundle, "MAX_HEADER_BYTES", 4096)
    stream = io.BufferedReader(io.BytesIO(b"# v2 git bundle\n" + b"1" * 100_000))
    with pytest.raises(BundleFormatError, match="too large"):
        read_header(stream)
    assert stream.tell() <= 4096 + 16  # it stopped reading at the limit


def test_header_just_under_limit_is_accepted(monkeypatch):
    data = f"# v2 git bundle\n{OID1} refs/heads/main\n\n".encode()
    monkeypatch.setattr(bundle, "MAX_HEADER_BYTES", len(data))
    assert header_of(data).size == len(data)


def test_bundle_format_error_is_a_mirrorci_error():
    assert issubclass(BundleFormatError, MirrorciError)


# --- real bundles ------------------------------------------------------------------------------


def test_create_bundles_branches_tags_and_head_only(origin_bare, tmp_path):
    # Refs a published bundle must not carry: remote-tracking, mirror lists, others.
    main = git(origin_bare, "rev-parse", "main")
    git(origin_bare, "update-ref", "refs/remotes/origin/main", main)
    git(origin_bare, "update-ref", "refs/remotes/upstream/develop", "develop")
    blob = git(origin_bare, "hash-object", "-w", "--stdin")
    git(origin_bare, "update-ref", "refs/mirrors/bundle/http", blob)
    git(origin_bare, "update-ref", "refs/pull/1/head", "feature/x")
    g = Git(origin_bare)

    names = bundle.bundle_refnames(g)
    assert names == [r for _, r in refs_in(origin_bare, "refs/heads", "refs/tags")]
    dest = tmp_path / "x.bundle"
    h = bundle.create(g, dest, names)

    expected = refs_in(origin_bare, "refs/heads", "refs/tags") + [(main, "HEAD")]
    assert sorted(h.refs) == sorted(expected)
    assert not [r for _, r in h.refs if r.startswith(("refs/remotes/", "refs/mirrors/", "refs/pull/"))]
    assert h.refs[-1] == (main, "HEAD")
    assert h.prerequisites == [] and h.version == 2 and h.object_format == "sha1"
    # The annotated tag of a blob is carried, with its tag object id.
    assert (git(origin_bare, "rev-parse", "refs/tags/blob-tag"), "refs/tags/blob-tag") in h.refs
    assert git(origin_bare, "cat-file", "-t", "blob-tag^{}") == "blob"
    # git agrees with the header we read.
    listed = git(tmp_path, "bundle", "list-heads", str(dest))
    assert sorted(tuple(line.split(" ", 1)) for line in listed.splitlines()) == sorted(h.refs)


def test_created_bundle_can_be_verified_and_contains_everything(origin_bare, tmp_path):
    g = Git(origin_bare)
    dest = tmp_path / "x.bundle"
    bundle.create(g, dest, bundle.bundle_refnames(g))
    target = tmp_path / "t"
    git(tmp_path, "init", "-q", "--bare", str(target))
    git(target, "bundle", "verify", str(dest))
    git(target, "fetch", "-q", str(dest), "refs/*:refs/*")
    assert git(target, "rev-parse", "refs/tags/blob-tag^{}") == git(origin_bare, "rev-parse", "main:README.md")
    assert git(target, "fsck", "--no-dangling", "--no-progress") == ""


def test_create_without_head(origin_bare, tmp_path):
    g = Git(origin_bare)
    h = bundle.create(g, tmp_path / "x.bundle", ["refs/heads/main"], include_head=False)
    assert [r for _, r in h.refs] == ["refs/heads/main"]


def test_create_refuses_an_empty_ref_list(origin_bare, tmp_path):
    with pytest.raises(MirrorciError, match="no branches or tags"):
        bundle.create(Git(origin_bare), tmp_path / "x.bundle", [])


def test_header_size_is_where_the_pack_starts(sample_bundle):
    path, h = sample_bundle
    data = path.read_bytes()
    assert data[h.size - 1:h.size] == b"\n" and data[h.size - 2:h.size] == b"\n\n"
    assert data[h.size:h.size + 4] == b"PACK"
    assert data[h.size + 4:h.size + 8] == b"\x00\x00\x00\x02"  # pack version 2
    assert bundle.read_header_file(path) == h
    assert len(data) > 3 << 20  # the incompressible 3 MB file is in it


def test_pack_checksum_is_the_last_20_bytes(sample_bundle):
    path, h = sample_bundle
    assert bundle.pack_checksum(path, h) == path.read_bytes()[-20:].hex()
    assert len(bundle.pack_checksum(path, h)) == 40


def test_trailing_hash_reads_from_the_end(tmp_path):
    f = tmp_path / "pack-x.idx"
    f.write_bytes(b"header" + bytes(range(20)) + bytes(range(100, 120)))
    assert bundle.trailing_hash(f, 20) == bytes(range(100, 120)).hex()  # a file's own checksum
    assert bundle.trailing_hash(f, 20, back=2) == bytes(range(20)).hex()  # in an .idx: the pack's
    assert bundle.trailing_hash(f, 4, back=3) == bytes(range(108, 112)).hex()


def test_copy_pack_and_file_sha256(sample_bundle, tmp_path):
    import hashlib

    path, h = sample_bundle
    out = tmp_path / "p.pack"
    bundle.copy_pack(path, h, out)
    data = path.read_bytes()
    assert out.read_bytes() == data[h.size:]
    assert bundle.file_sha256(path) == hashlib.sha256(data).hexdigest()


def _idx_trailer_pack(idx: Path) -> str:
    data = idx.read_bytes()
    assert data[:4] == b"\xfftOc"  # idx v2
    return data[-40:-20].hex()


def test_make_index_with_index_pack(sample_repo, sample_bundle, tmp_path):
    path, h = sample_bundle
    g = RecordingGit(sample_repo)
    idx = bundle.make_index(g, path, h, tmp_path)
    checksum = bundle.pack_checksum(path, h)
    assert idx == tmp_path / f"pack-{checksum}.idx"
    assert "index-pack" in g.commands
    assert _idx_trailer_pack(idx) == checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == [idx.name]  # the temporary pack is gone
    # The idx describes the pack: git verify-pack accepts the pair.
    bundle.copy_pack(path, h, tmp_path / f"pack-{checksum}.pack")
    git(tmp_path, "verify-pack", str(idx))


def test_make_index_reuses_the_repository_idx_after_repack(sample_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(sample_repo, repo, symlinks=True)
    git(repo, "repack", "-adbq")
    g = RecordingGit(repo)
    path = tmp_path / "x.bundle"
    h = bundle.create(g, path, bundle.bundle_refnames(g))
    checksum = bundle.pack_checksum(path, h)
    own_idx = repo / ".git" / "objects" / "pack" / f"pack-{checksum}.idx"
    assert own_idx.is_file(), "after repack -adb the bundle's pack is the repository's pack"
    own_pack = own_idx.with_suffix(".pack")
    assert own_pack.read_bytes() == path.read_bytes()[h.size:]

    workdir = tmp_path / "work"
    workdir.mkdir()
    g.commands.clear()
    idx = bundle.make_index(g, path, h, workdir)
    assert "index-pack" not in g.commands
    assert idx.read_bytes() == own_idx.read_bytes()
    assert _idx_trailer_pack(idx) == checksum
    assert sorted(p.name for p in workdir.iterdir()) == [idx.name]


def test_make_index_does_not_reuse_when_the_repository_pack_differs(origin_bare, tmp_path):
    # A bundle of a subset of refs is a different pack: index-pack must run.
    g = RecordingGit(origin_bare)
    path = tmp_path / "x.bundle"
    h = bundle.create(g, path, ["refs/heads/main"], include_head=False)
    g.commands.clear()
    idx = bundle.make_index(g, path, h, tmp_path)
    assert "index-pack" in g.commands
    assert _idx_trailer_pack(idx) == bundle.pack_checksum(path, h)


def test_make_index_reuse_in_bare_origin(origin_bare, tmp_path):
    # make_bare_origin ran `git repack -adb`: the full bundle is the origin's pack.
    g = RecordingGit(origin_bare)
    path = tmp_path / "x.bundle"
    h = bundle.create(g, path, bundle.bundle_refnames(g))
    g.commands.clear()
    idx = bundle.make_index(g, path, h, tmp_path)
    assert g.commands == ["rev-parse"]
    assert _idx_trailer_pack(idx) == bundle.pack_checksum(path, h)


def test_sha256_repository_bundle(tmp_path):
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", "--object-format=sha256", "-b", "main", str(repo))
    (repo / "f").write_text("x\n")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "one")
    g = Git(repo)
    path = tmp_path / "x.bundle"
    h = bundle.create(g, path, bundle.bundle_refnames(g))
    assert (h.version, h.object_format, h.hash_len) == (3, "sha256", 32)
    assert h.refs == [(git(repo, "rev-parse", "main"), "refs/heads/main"), (git(repo, "rev-parse", "main"), "HEAD")]
    assert path.read_bytes()[h.size:h.size + 4] == b"PACK"
    checksum = bundle.pack_checksum(path, h)
    assert len(checksum) == 64
    idx = bundle.make_index(g, path, h, tmp_path)
    assert idx.read_bytes()[-64:-32].hex() == checksum
