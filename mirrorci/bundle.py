"""Git bundles: create them, read their header from a stream, find their pack.

Format (gitformat-bundle): a signature line, v3 capability lines, prerequisite
lines `-<oid> <comment>`, ref lines `<oid> <refname>`, one empty line, then a
raw packfile. Everything after the empty line belongs to the pack.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import MirrorciError
from .gitcmd import Git

SIGNATURES = {b"# v2 git bundle\n": 2, b"# v3 git bundle\n": 3}
KNOWN_CAPABILITIES = {"object-format", "filter"}
HASH_HEX_LEN = {"sha1": 40, "sha256": 64}
MAX_HEADER_BYTES = 64 << 20
CHUNK = 1 << 20

# Refs that describe the mirrors or belong to someone else never go in a bundle.
BUNDLED_NAMESPACES = ("refs/heads/", "refs/tags/")


class BundleFormatError(MirrorciError):
    """The bytes are not a bundle we can apply."""


@dataclass
class BundleHeader:
    version: int
    object_format: str = "sha1"
    capabilities: dict[str, str] = field(default_factory=dict)
    prerequisites: list[str] = field(default_factory=list)
    refs: list[tuple[str, str]] = field(default_factory=list)
    size: int = 0  # bytes up to and including the empty line

    @property
    def hash_len(self) -> int:
        return HASH_HEX_LEN[self.object_format] // 2


def read_header(stream: BinaryIO) -> BundleHeader:
    """Read a bundle header from a buffered stream, leaving it positioned at the pack."""
    first = stream.readline(64)
    if first not in SIGNATURES:
        raise BundleFormatError("not a git bundle (bad signature line)")
    header = BundleHeader(version=SIGNATURES[first], size=len(first))
    while True:
        line = stream.readline(MAX_HEADER_BYTES)
        header.size += len(line)
        if header.size > MAX_HEADER_BYTES:
            raise BundleFormatError("bundle header is too large")
        if not line.endswith(b"\n"):
            raise BundleFormatError("bundle header ends before its empty line")
        text = line[:-1].decode("utf-8", "surrogateescape")
        if text == "":
            break
        if text.startswith("@"):
            if header.version < 3:
                raise BundleFormatError("capability line in a v2 bundle")
            key, _, value = text[1:].partition("=")
            if key not in KNOWN_CAPABILITIES:
                raise BundleFormatError(f"bundle needs unknown capability {key!r}")
            header.capabilities[key] = value
            if key == "object-format":
                if value not in HASH_HEX_LEN:
                    raise BundleFormatError(f"unknown object format {value!r}")
                header.object_format = value
            continue
        if text.startswith("-"):
            oid = text[1:].split(" ", 1)[0]
            _check_oid(oid, header)
            header.prerequisites.append(oid)
            continue
        oid, sep, refname = text.partition(" ")
        _check_oid(oid, header)
        if not sep or not refname:
            raise BundleFormatError(f"bad ref line in bundle header: {text[:80]!r}")
        header.refs.append((oid, refname))
    if "filter" in header.capabilities:
        raise BundleFormatError("filtered (partial) bundles cannot seed a full clone")
    return header


def _check_oid(oid: str, header: BundleHeader) -> None:
    if len(oid) != HASH_HEX_LEN[header.object_format] or any(c not in "0123456789abcdef" for c in oid):
        raise BundleFormatError(f"bad object id in bundle header: {oid[:80]!r}")


def read_header_file(path: Path) -> BundleHeader:
    with path.open("rb") as f:
        return read_header(f)


def bundle_refnames(git: Git) -> list[str]:
    """Branches and tags of the repository, the only refs a published bundle carries."""
    names = git.out("for-each-ref", "--format=%(refname)", *[ns.rstrip("/") for ns in BUNDLED_NAMESPACES])
    return [n for n in names.splitlines() if n]


def create(git: Git, dest: Path, refnames: list[str], include_head: bool = True) -> BundleHeader:
    """Write a full bundle of `refnames` (plus HEAD) to `dest`."""
    if not refnames:
        raise MirrorciError("the repository has no branches or tags to publish")
    revs = list(refnames)
    if include_head and git.ok("rev-parse", "--verify", "-q", "HEAD^{commit}"):
        revs.append("HEAD")
    git.run("bundle", "create", "-q", str(dest), "--stdin", input="\n".join(revs) + "\n")
    return read_header_file(dest)


def pack_checksum(path: Path, header: BundleHeader) -> str:
    """The pack's trailing checksum, which names it `pack-<checksum>.pack`."""
    with path.open("rb") as f:
        f.seek(-header.hash_len, 2)
        return f.read(header.hash_len).hex()


def copy_pack(bundle: Path, header: BundleHeader, dest: Path) -> None:
    with bundle.open("rb") as src, dest.open("wb") as out:
        src.seek(header.size)
        shutil.copyfileobj(src, out, CHUNK)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def make_index(git: Git, bundle: Path, header: BundleHeader, workdir: Path) -> Path:
    """Produce the `.idx` of the bundle's pack, reusing the repository's own when identical.

    After `git repack -adb` the bundle's pack is byte for byte the repository's pack,
    so its index already exists and indexing again would only cost time.
    """
    checksum = pack_checksum(bundle, header)
    pack_dir = git.git_path("objects/pack")
    existing = pack_dir / f"pack-{checksum}.idx"
    idx = workdir / f"pack-{checksum}.idx"
    if existing.is_file() and (pack_dir / f"pack-{checksum}.pack").stat().st_size == bundle.stat().st_size - header.size:
        shutil.copyfile(existing, idx)
        return idx
    pack = workdir / f"pack-{checksum}.pack"
    copy_pack(bundle, header, pack)
    git.run("index-pack", f"--object-format={header.object_format}", "-o", str(idx), str(pack))
    pack.unlink()
    return idx
