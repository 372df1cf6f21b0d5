"""The published chain: one base bundle and the increments on top of it.

A publish with a usable chain in the store writes one increment: a bundle whose
prerequisites are the previous element's tips and whose pack is not thin, so it
ships with its own `.idx` and a runner installs it without `index-pack`. When the
chain is long enough (`--max-chain`) or its increments together weigh too much next
to the base (`--collapse-fraction`), the publish makes a new base instead.

Everything read back here comes from the previous bundle list, which whoever can
push refs/mirrors/* may have written: it is checked against the store (sizes) and
bounded (header sizes) before anything is built on it, and any doubt means a new base.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from . import bundle, log
from .bundle import BundleFormatError, BundleHeader
from .gitcmd import Git
from .mirrorlist import BundleEntry, BundleList
from .store import Store

DEFAULT_MAX_CHAIN = 16
DEFAULT_COLLAPSE_FRACTION = 0.5
ARTIFACT_SUFFIXES = (".bundle", ".idx", ".torrent")


def bundles_prefix(name: str) -> str:
    """Where every artifact of the mirror `name` lives in the store; retention never looks elsewhere."""
    return f"{name}/bundles/"


def bundle_key(name: str, sha256: str) -> str:
    return f"{bundles_prefix(name)}{sha256}.bundle"


def idx_key(name: str, sha256: str) -> str:
    return f"{bundles_prefix(name)}{sha256}.idx"


def torrent_key(name: str, sha256: str) -> str:
    return f"{bundles_prefix(name)}{sha256}.torrent"


def artifact_keys(name: str, sha256: str) -> list[str]:
    """Every key a listed bundle may own: the bundle, its index, its torrent."""
    return [f"{bundles_prefix(name)}{sha256}{suffix}" for suffix in ARTIFACT_SUFFIXES]


@dataclass
class Current:
    """The chain a publish can build on, or why there is none."""

    elements: list[BundleEntry] = field(default_factory=list)
    tips: list[tuple[str, str]] = field(default_factory=list)  # (oid, refname) of the last element
    reason: str = ""  # non-empty: no usable chain, the publish makes a base

    @property
    def usable(self) -> bool:
        return not self.reason

    @property
    def base(self) -> BundleEntry:
        return self.elements[0]

    @property
    def increments(self) -> list[BundleEntry]:
        return self.elements[1:]


def current(store: Store, name: str, listed: BundleList | None, object_format: str, max_chain: int) -> Current:
    """The previous list's chain, if every element is in this store as listed and the last one's tips can be read.

    A chain already longer than `max_chain` is not looked up element by element: it collapses anyway.
    """
    if listed is None:
        return Current(reason="no bundle list yet")
    elements = listed.chain()
    if not elements:
        return Current(reason="the current bundle list has no base bundle")
    if len(elements) - 1 > max_chain:
        return Current(reason=f"chain length {len(elements) - 1} reached (--max-chain {max_chain})")
    if elements[0].object_format != object_format:
        return Current(reason=f"the chain is {elements[0].object_format}, the repository {object_format}")
    for entry in elements:
        if store.size_of(bundle_key(name, entry.sha256)) != entry.size:
            return Current(reason=f"bundle {entry.sha256[:12]} of the current list is not in this store")
        if entry.incremental and not entry.has_index:
            return Current(reason=f"bundle {entry.sha256[:12]} of the current list has no pack index")
        if entry.has_index and store.size_of(idx_key(name, entry.sha256)) != entry.idx_size:
            return Current(reason=f"the index of bundle {entry.sha256[:12]} is not in this store")
    header = read_tips(store, name, elements[-1])
    if header is None:
        return Current(reason=f"the header of bundle {elements[-1].sha256[:12]} cannot be read")
    return Current(elements, header.refs)


def read_tips(store: Store, name: str, entry: BundleEntry) -> BundleHeader | None:
    """A listed bundle's header, read from the store.

    `headerSize` is a claim of the previous list: no more than bundle.MAX_HEADER_BYTES is
    read, and whatever is read must parse as a bundle header on its own.
    """
    if entry.header_size <= 0:
        return None
    if entry.header_size > bundle.MAX_HEADER_BYTES:
        log.warn(f"the current bundle list claims a {entry.header_size} byte bundle header, over the "
                 f"{bundle.MAX_HEADER_BYTES} byte limit")
        return None
    data = store.read_prefix(bundle_key(name, entry.sha256), entry.header_size)
    if not data:
        return None
    try:
        header = bundle.read_header(io.BytesIO(data))
    except BundleFormatError as exc:
        log.warn(f"the header of bundle {entry.sha256[:12]} cannot be read: {exc}")
        return None
    return header if header.size == entry.header_size and header.object_format == entry.object_format else None


def length_reason(chain: Current, max_chain: int) -> str:
    """Why the chain must collapse before anything is built on it, or ''."""
    if len(chain.increments) >= max_chain:
        return f"chain length {len(chain.increments)} reached (--max-chain {max_chain})"
    return ""


def weight_reason(chain: Current, new_size: int, fraction: float) -> str:
    """Why the chain must collapse rather than take an increment of `new_size` bytes, or ''."""
    total = sum(e.size for e in chain.increments) + new_size
    if total > fraction * chain.base.size:
        return (f"increments would total {total} bytes, {total / chain.base.size:.2f} of the base "
                f"(over --collapse-fraction {fraction:g})")
    return ""


@dataclass
class Increment:
    path: Path
    header: BundleHeader
    objects: int


def build_increment(git: Git, dest: Path, refs: list[tuple[str, str]], tips: list[tuple[str, str]],
                    object_format: str) -> Increment | str:
    """The increment from the chain's last tips to `refs`, or why it cannot be built.

    Its prerequisites are the previous tips peeled to commits (what `git bundle verify`
    accepts); every previous tip, tags included, is excluded from the pack. A tip the
    repository no longer has (a deleted branch: origin dropped its objects) can be
    neither: the pack then also carries whatever of its history the new tips reach,
    which keeps it self-contained. When no previous tip is left, history was rewritten.
    """
    oids = sorted({oid for oid, _ in tips})
    if not oids:
        return "the chain's last bundle has no tips"
    query = "".join(f"{oid}\n{oid}^{{commit}}\n" for oid in oids)
    lines = git.out("cat-file", "--batch-check=%(objectname) %(objecttype)", input=query).splitlines()
    if len(lines) != 2 * len(oids):
        return "the chain's tips cannot be looked up in the repository"
    present = [oid for oid, line in zip(oids, lines[0::2], strict=True) if not line.endswith(" missing")]
    if not present:
        return "none of the chain's tips is in the repository (history rewritten?)"
    if len(present) < len(oids):
        log.info(f"{len(oids) - len(present)} tip(s) of the chain's last bundle are gone (deleted branches or tags): "
                 "not prerequisites of the increment")
    commits = sorted({line.split(" ", 1)[0] for line in lines[1::2] if line.endswith(" commit")})
    header = bundle.write_increment(git, dest, refs, commits, present, object_format)
    return Increment(dest, header, bundle.pack_object_count(dest, header))
