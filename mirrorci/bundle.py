"""Git bundles: create them, read their header from a stream, find their pack.

Format (gitformat-bundle): a signature line, v3 capability lines, prerequisite
lines `-<oid> <comment>`, ref lines `<oid> <refname>`, one empty line, then a
raw packfile. Everything after the empty line belongs to the pack.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
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


def current_refs(git: Git, refnames: list[str]) -> list[tuple[str, str]]:
    """(object id, refname) of `refnames`, plus HEAD when it is a commit, as a bundle's ref lines."""
    refs: list[tuple[str, str]] = []
    if refnames:
        namespaces = [ns.rstrip("/") for ns in BUNDLED_NAMESPACES]  # not the names: 100,000 refs overflow argv
        lines = git.out("for-each-ref", "--format=%(objectname) %(refname)", *namespaces).splitlines()
        wanted = set(refnames)
        refs = [(oid, name) for oid, _, name in (line.partition(" ") for line in lines) if name in wanted]
    head = git.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    if head.returncode == 0:
        refs.append((head.stdout.decode().strip(), "HEAD"))
    return refs


def write_increment(
    git: Git, dest: Path, refs: list[tuple[str, str]], prerequisites: list[str], exclude: list[str],
    object_format: str = "sha1",
) -> BundleHeader:
    """Write a bundle of `refs` minus everything reachable from `exclude`, with a pack that is not thin.

    `git bundle create` makes thin packs (deltas against the prerequisites), which a client
    can only index with `index-pack --fix-thin` against its own object store. Here the pack
    comes from `pack-objects --revs` without `--thin`: every delta base is inside the pack,
    so the pack is complete on its own and its `.idx` can be published next to it.
    The header is written as `git bundle create` would: prerequisites (commits), then refs.
    """
    lines = ["# v3 git bundle", f"@object-format={object_format}"] if object_format != "sha1" else ["# v2 git bundle"]
    lines += [f"-{oid} " for oid in prerequisites]
    lines += [f"{oid} {name}" for oid, name in refs]
    revs = sorted({oid for oid, _ in refs}) + [f"^{oid}" for oid in exclude]
    with dest.open("wb") as out:
        out.write(("\n".join(lines) + "\n\n").encode())
        out.flush()
        proc = git.popen("pack-objects", "--revs", "--stdout", "-q", "--delta-base-offset",
                         stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE)
        _, err = proc.communicate(("\n".join(revs) + "\n").encode())
    if proc.returncode != 0:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise MirrorciError(f"git pack-objects failed: {detail[-1] if detail else proc.returncode}")
    return read_header_file(dest)


def pack_object_count(path: Path, header: BundleHeader) -> int:
    """Number of objects in the bundle's pack (from the pack header: 'PACK', version, count)."""
    with path.open("rb") as f:
        f.seek(header.size)
        head = f.read(12)
    if len(head) != 12 or head[:4] != b"PACK":
        raise BundleFormatError("the bundle holds no pack")
    return int.from_bytes(head[8:12], "big")


def trailing_hash(path: Path, hash_len: int, back: int = 1) -> str:
    """The hash that ends `back` hash lengths before the end of a pack, bundle or `.idx` file, in hex.

    A pack (and so a bundle) ends with its checksum, which names it `pack-<checksum>.pack`
    (back=1); an `.idx` ends with that pack checksum and then its own (back=2 is the pack's).
    """
    with path.open("rb") as f:
        f.seek(-back * hash_len, 2)
        return f.read(hash_len).hex()


def pack_checksum(path: Path, header: BundleHeader) -> str:
    """The checksum ending the bundle's pack: the pack's name."""
    return trailing_hash(path, header.hash_len)


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
    pack_size = bundle.stat().st_size - header.size
    if existing.is_file() and (pack_dir / f"pack-{checksum}.pack").stat().st_size == pack_size:
        shutil.copyfile(existing, idx)
        return idx
    pack = workdir / f"pack-{checksum}.pack"
    copy_pack(bundle, header, pack)
    # No --fix-thin: a pack that needs objects from outside itself fails here, before it is published.
    git.run("index-pack", f"--object-format={header.object_format}", "-o", str(idx), str(pack))
    pack.unlink()
    return idx
