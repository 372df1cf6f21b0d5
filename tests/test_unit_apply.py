"""Unit tests for mirrorci.apply: fast and streaming paths from file-backed openers."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import pytest

from mirrorci import bundle
from mirrorci.apply import HashingReader, apply_fast, apply_streaming
from mirrorci.bundle import BundleHeader
from mirrorci.errors import SourceFailed
from mirrorci.gitcmd import Git
from mirrorci.mirrorlist import BundleEntry
from mirrorci.sources.http import open_file
from tests.support.repos import fsck_ok, git

APPLIERS = {"fast": apply_fast, "streaming": apply_streaming}
MiB = 1 << 20


@dataclass
class Published:
    bundle: Path
    idx: Path
    header: BundleHeader
    entry: BundleEntry


def publish_like(g: Git, path: Path, header: BundleHeader, workdir: Path, bundle_id: str) -> Published:
    """What publish computes for a bundle: sha256, size, pack checksum and a pre-built index."""
    idx = bundle.make_index(g, path, header, workdir)
    entry = BundleEntry(
        id=bundle_id, uri=path.as_uri(), creation_token=1, sha256=bundle.file_sha256(path),
        size=path.stat().st_size, pack_checksum=bundle.pack_checksum(path, header), header_size=header.size,
        idx_uri=idx.as_uri(), idx_sha256=bundle.file_sha256(idx), idx_size=idx.stat().st_size,
    )
    return Published(path, idx, header, entry)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("apply-store")


@pytest.fixture(scope="module")
def full(sample_repo: Path, store: Path) -> Published:
    g = Git(sample_repo)
    path = store / "full.bundle"
    header = bundle.create(g, path, bundle.bundle_refnames(g))
    return publish_like(g, path, header, store, "full")


@pytest.fixture(scope="module")
def other(sample_repo: Path, store: Path) -> Published:
    """A different, smaller full bundle (only `develop`), with its own index."""
    g = Git(sample_repo)
    workdir = store / "other"
    workdir.mkdir()
    path = workdir / "develop.bundle"
    header = bundle.create(g, path, ["refs/heads/develop"], include_head=False)
    return publish_like(g, path, header, workdir, "other")


@pytest.fixture(scope="module")
def incremental(sample_repo: Path, store: Path) -> Path:
    path = store / "incremental.bundle"
    git(sample_repo, "bundle", "create", "-q", str(path), "main~3..main")
    return path


@pytest.fixture
def target(tmp_path: Path) -> Git:
    repo = tmp_path / "target"
    git(tmp_path, "init", "-q", str(repo))
    return Git(repo)


def pack_dir(g: Git) -> Path:
    return g.cwd / ".git" / "objects" / "pack"  # type: ignore[operator]


def corrupt_copy(src: Path, dest: Path, offset: int) -> Path:
    data = bytearray(src.read_bytes())
    data[offset] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def assert_applied(g: Git, pub: Published) -> None:
    for oid, _ in pub.header.refs:
        git(g.cwd, "cat-file", "-e", oid)  # type: ignore[arg-type]
    assert fsck_ok(g.cwd)  # type: ignore[arg-type]
    names = sorted(p.name for p in pack_dir(g).iterdir())
    assert names == [f"pack-{pub.entry.pack_checksum}.idx", f"pack-{pub.entry.pack_checksum}.pack"]


def assert_nothing_left(g: Git) -> None:
    assert list(pack_dir(g).iterdir()) == []


# --- success ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", APPLIERS)
def test_apply_into_fresh_repository(path, full, target):
    applied = APPLIERS[path](target, full.entry, open_file)
    assert applied.path == path
    assert applied.pack_name == full.entry.pack_checksum
    assert applied.bytes == full.entry.size
    assert applied.header == full.header
    assert_applied(target, full)
    # Every object reachable from the tips is there: a full walk from them succeeds.
    tips = sorted({oid for oid, _ in full.header.refs})
    git(target.cwd, "rev-list", "--objects", "--quiet", *tips)
    assert git(target.cwd, "for-each-ref") == ""  # applying writes objects only; refs are the caller's job


def test_fast_path_installs_the_published_index(full, target):
    apply_fast(target, full.entry, open_file)
    installed = pack_dir(target) / f"pack-{full.entry.pack_checksum}.idx"
    assert installed.read_bytes() == full.idx.read_bytes()
    assert (pack_dir(target) / f"pack-{full.entry.pack_checksum}.pack").read_bytes() == \
        full.bundle.read_bytes()[full.header.size:]


@pytest.mark.parametrize("path", APPLIERS)
def test_progress_callback_counts_every_byte(path, full, target):
    seen: list[int] = []
    APPLIERS[path](target, full.entry, open_file, seen.append)
    assert sum(seen) == full.entry.size
    assert all(n > 0 for n in seen)


def test_streaming_with_threads_option(full, target):
    assert apply_streaming(target, full.entry, open_file, threads=1).path == "streaming"
    assert_applied(target, full)


@pytest.mark.parametrize("path", APPLIERS)
def test_apply_twice_is_harmless(path, full, target):
    APPLIERS[path](target, full.entry, open_file)
    APPLIERS[path](target, full.entry, open_file)
    assert_applied(target, full)


# --- failures leave nothing behind --------------------------------------------------------------


@pytest.mark.parametrize("path", APPLIERS)
def test_wrong_sha256(path, full, target):
    entry = dataclasses.replace(full.entry, sha256="0" * 64)
    with pytest.raises(SourceFailed, match="sha256 does not match"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
def test_truncated_download(path, full, target, tmp_path):
    short = tmp_path / "short.bundle"
    short.write_bytes(full.bundle.read_bytes()[:-1000])
    entry = dataclasses.replace(full.entry, uri=short.as_uri())
    with pytest.raises(SourceFailed, match="truncated|index-pack rejected"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
def test_truncated_inside_the_header(path, full, target, tmp_path):
    short = tmp_path / "short.bundle"
    short.write_bytes(full.bundle.read_bytes()[:full.header.size // 2])
    entry = dataclasses.replace(full.entry, uri=short.as_uri())
    with pytest.raises(SourceFailed, match="bad bundle: bundle header ends"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
def test_longer_than_promised(path, full, target, tmp_path):
    long = tmp_path / "long.bundle"
    long.write_bytes(full.bundle.read_bytes() + b"\0" * 10)
    entry = dataclasses.replace(full.entry, uri=long.as_uri())
    with pytest.raises(SourceFailed, match="longer than"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
@pytest.mark.parametrize("where", ["pack-start", "middle", "trailer"])
def test_flipped_byte_in_the_pack(path, where, full, target, tmp_path):
    size = full.entry.size
    offset = {"pack-start": full.header.size + 12, "middle": size // 2, "trailer": size - 5}[where]
    bad = corrupt_copy(full.bundle, tmp_path / "bad.bundle", offset)
    entry = dataclasses.replace(full.entry, uri=bad.as_uri())
    with pytest.raises(SourceFailed):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("where", ["pack-start", "middle", "trailer"])
def test_streaming_rejects_a_corrupt_pack_even_when_the_list_vouches_for_it(where, full, target, tmp_path):
    """index-pack checks the pack itself, not only the sha256 in the list."""
    size = full.entry.size
    offset = {"pack-start": full.header.size + 12, "middle": size // 2, "trailer": size - 5}[where]
    bad = corrupt_copy(full.bundle, tmp_path / "bad.bundle", offset)
    entry = dataclasses.replace(full.entry, uri=bad.as_uri(), sha256=bundle.file_sha256(bad))
    with pytest.raises(SourceFailed, match="index-pack rejected"):
        apply_streaming(target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("change,message", [
    (lambda e: {"idx_sha256": "0" * 64}, "pack index does not match"),
    (lambda e: {"idx_size": e.idx_size + 1}, "pack index does not match"),
    (lambda e: {"idx_size": e.idx_size - 1}, "longer than"),
    (lambda e: {"pack_checksum": "0" * 40}, "pack checksum does not match"),
], ids=["wrong-idx-sha256", "wrong-idx-size", "idx-longer-than-promised", "wrong-pack-checksum"])
def test_fast_path_rejects_a_list_entry_that_does_not_match(full, target, change, message):
    entry = dataclasses.replace(full.entry, **change(full.entry))
    with pytest.raises(SourceFailed, match=message):
        apply_fast(target, entry, open_file)
    assert_nothing_left(target)


def test_fast_path_idx_of_a_different_pack(full, other, target):
    # The idx itself is intact and matches its own sha256/size, but names another pack.
    entry = dataclasses.replace(full.entry, idx_uri=other.entry.idx_uri, idx_sha256=other.entry.idx_sha256,
                                idx_size=other.entry.idx_size)
    with pytest.raises(SourceFailed, match="pack checksum does not match the published index"):
        apply_fast(target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
@pytest.mark.parametrize("garbage", [b"<html>404 not found</html>\n" * 50, b"\0" * 5000, b"PACK\0\0\0\2" + b"x" * 100])
def test_garbage_instead_of_a_bundle(path, garbage, full, target, tmp_path):
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(garbage)
    entry = dataclasses.replace(full.entry, uri=junk.as_uri(), size=len(garbage),
                                sha256=bundle.file_sha256(junk))
    with pytest.raises(SourceFailed, match="bad bundle: not a git bundle"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
def test_bundle_with_missing_prerequisites(path, incremental, full, target):
    header = bundle.read_header_file(incremental)
    assert header.prerequisites, "main~3..main has prerequisites"
    entry = dataclasses.replace(full.entry, uri=incremental.as_uri(), sha256=bundle.file_sha256(incremental),
                                size=incremental.stat().st_size,
                                pack_checksum=incremental.read_bytes()[-20:].hex(), header_size=header.size)
    # The fast path checks the published index against the pack before anything else; here it is
    # another bundle's index, so either check may be the one that refuses it.
    with pytest.raises(SourceFailed, match="prerequisites" if path != "fast" else "prerequisites|pack checksum"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
def test_missing_file(path, full, target, tmp_path):
    entry = dataclasses.replace(full.entry, uri=(tmp_path / "nope.bundle").as_uri(),
                                idx_uri=(tmp_path / "nope.idx").as_uri())
    with pytest.raises(SourceFailed, match="cannot open"):
        APPLIERS[path](target, entry, open_file)
    assert_nothing_left(target)


@pytest.mark.parametrize("path", APPLIERS)
def test_opener_failing_mid_download(path, full, target):
    class Failing(io.RawIOBase):
        def __init__(self, f: BinaryIO) -> None:
            self.f, self.n = f, 0

        def readable(self) -> bool:
            return True

        def readinto(self, b):  # type: ignore[no-untyped-def]
            if self.n > 2 * MiB:
                raise SourceFailed("download interrupted: ConnectionResetError")
            data = self.f.read(len(b))
            b[:len(data)] = data
            self.n += len(data)
            return len(data)

        def close(self) -> None:
            self.f.close()
            super().close()

    def opener(uri: str) -> BinaryIO:
        raw = open_file(uri)
        return raw if uri.endswith(".idx") else Failing(raw)  # type: ignore[return-value]

    with pytest.raises(SourceFailed, match="interrupted"):
        APPLIERS[path](target, full.entry, opener)
    assert_nothing_left(target)


# --- HashingReader ------------------------------------------------------------------------------


def test_hashing_reader_counts_and_hashes():
    import hashlib

    data = bytes(range(256)) * 1000
    seen: list[int] = []
    reader = HashingReader(io.BytesIO(data), len(data), seen.append)
    assert io.BufferedReader(reader, 4096).read() == data
    assert reader.count == len(data) == sum(seen)
    assert reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_reader_accepts_exactly_the_limit():
    reader = HashingReader(io.BytesIO(b"x" * 100), 100)
    assert io.BufferedReader(reader).read() == b"x" * 100


@pytest.mark.parametrize("extra", [1, 2, 5000])
def test_hashing_reader_enforces_the_limit(extra):
    reader = HashingReader(io.BytesIO(b"x" * (100 + extra)), 100)
    with pytest.raises(SourceFailed, match="longer than the 100 bytes"):
        io.BufferedReader(reader, 16).read()
    assert reader.count <= 101  # it never pulled much past the limit


def test_hashing_reader_limit_with_large_reads():
    reader = HashingReader(io.BytesIO(b"y" * (3 * MiB)), MiB)
    stream = io.BufferedReader(reader, MiB)
    with pytest.raises(SourceFailed):
        while stream.read(MiB):
            pass
    assert reader.count == MiB + 1


# --- memory stays flat ----------------------------------------------------------------------------


class CountingFile:
    """A file-like download whose every read is recorded."""

    def __init__(self, path: Path, log: list[tuple[int, int]]) -> None:
        self.f = path.open("rb")
        self.log = log

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.log.append((n, len(data)))
        return data

    def readinto(self, b):  # type: ignore[no-untyped-def]
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


@pytest.mark.parametrize("path", APPLIERS)
def test_reads_are_chunked(path, full, target):
    assert full.entry.size > 3 * MiB
    reads: dict[str, list[tuple[int, int]]] = {}

    def opener(uri: str) -> BinaryIO:
        return CountingFile(Path(unquote(urlsplit(uri).path)), reads.setdefault(uri, []))  # type: ignore[return-value]

    APPLIERS[path](target, full.entry, opener)
    assert_applied(target, full)
    bundle_reads = reads[full.entry.uri]
    assert sum(got for _, got in bundle_reads) == full.entry.size
    assert len(bundle_reads) >= 4  # 3+ MB cannot come in one go
    for asked, got in [r for rs in reads.values() for r in rs]:
        assert asked != -1 and asked is not None, "an unbounded read would load the whole download"
        assert got <= MiB + 64, f"one read of {got} bytes"


def test_no_temporary_files_left_after_success(full, target):
    apply_fast(target, full.entry, open_file)
    apply_streaming(target, dataclasses.replace(full.entry), open_file)
    assert not [p for p in pack_dir(target).iterdir() if p.name.startswith("tmp_")]

