"""LFS pointer files: recognising them among a tree's blobs, and where git-lfs keeps their objects.

A pointer is a small blob (git-lfs reads at most 1024 bytes) of `key value` lines:

    version https://git-lfs.github.com/spec/v1
    oid sha256:<64 hex digits>
    size <bytes>

Pointers come from origin's trees (verified git objects), so the oid and size they
name are what every object from a mirror is checked against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..gitcmd import Git
from .manifest import MAX_OBJECT_SIZE, object_path

MAX_POINTER_BYTES = 1024  # git-lfs does not read a larger blob as a pointer
_VERSIONS = ("https://git-lfs.github.com/spec/v1", "https://hawser.github.com/spec/v1")
_LINE = re.compile(rb"([a-z0-9.-]+) ([^\n]*)")
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class Pointer:
    oid: str  # sha256 of the content, 64 hex digits
    size: int


def parse_pointer(data: bytes) -> Pointer | None:
    """The pointer a blob holds, or None when it is not one (any other small file)."""
    if len(data) >= MAX_POINTER_BYTES or not data.startswith(b"version ") or not data.endswith(b"\n"):
        return None
    keys: dict[bytes, bytes] = {}
    for line in data[:-1].split(b"\n"):
        match = _LINE.fullmatch(line)
        if not match or match.group(1) in keys:
            return None
        keys[match.group(1)] = match.group(2)
    if keys.get(b"version", b"").decode("ascii", "replace") not in _VERSIONS:
        return None
    oid = re.fullmatch(rb"sha256:([0-9a-f]{64})", keys.get(b"oid", b""))
    size = re.fullmatch(rb"0|[1-9][0-9]{0,15}", keys.get(b"size", b""))
    if not oid or not size or int(size.group(0)) > MAX_OBJECT_SIZE:
        return None
    return Pointer(oid.group(1).decode(), int(size.group(0)))


def small_blobs(git: Git, oids: list[str]) -> list[str]:
    """The ids among `oids` that are blobs small enough to be pointers."""
    if not oids:
        return []
    out = git.out("cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                  input="".join(f"{oid}\n" for oid in oids))
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == "blob" and int(fields[2]) < MAX_POINTER_BYTES:
            found.append(fields[0])
    return found


def read_blobs(git: Git, oids: list[str]) -> dict[str, bytes]:
    """The content of small blobs, read in one `git cat-file --batch`."""
    if not oids:
        return {}
    data = git.run("cat-file", "--batch", input="".join(f"{oid}\n" for oid in oids)).stdout
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # "<oid> missing"
            continue
        size = int(header[2])
        blobs[header[0].decode()] = data[pos:pos + size]
        pos += size + 1
    return blobs


def pointers_among(git: Git, oids: list[str]) -> dict[str, Pointer]:
    """blob id -> the pointer it holds, for the ids among `oids` that are LFS pointers."""
    unique = sorted({oid for oid in oids if _HEX.fullmatch(oid)})
    found = {}
    for blob, data in read_blobs(git, small_blobs(git, unique)).items():
        pointer = parse_pointer(data)
        if pointer:
            found[blob] = pointer
    return found


def media_dir(git: Git) -> Path:
    """Where git-lfs keeps this repository's objects: `.git/lfs/objects`, unless lfs.storage says otherwise."""
    common = Path(git.out("rev-parse", "--path-format=absolute", "--git-common-dir"))
    configured = git.run("config", "--get", "lfs.storage", check=False).stdout.decode().strip()
    storage = (common / Path(configured).expanduser()) if configured else common / "lfs"
    return storage / "objects"


def object_file(media: Path, oid: str) -> Path:
    return media / object_path(oid)


def has_object(media: Path, pointer: Pointer) -> bool:
    """Present with the right size: git-lfs's own test before it downloads."""
    try:
        return object_file(media, pointer.oid).stat().st_size == pointer.size
    except OSError:
        return False
