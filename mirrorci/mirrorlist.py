"""The blobs under refs/mirrors/*: what they hold and how they are parsed.

- refs/mirrors/bundle/http: a bundle list in git's bundle-URI config format,
  extended with integrity keys git ignores (sha256, size, and a pre-built pack index).
  The list is a chain: one base bundle (every branch and tag, no prerequisites) and
  ordered increments, each naming its base (`baseSha256`) and the bundle right before
  it (`parentSha256`), with strictly increasing creationTokens, so git's creationToken
  heuristic and a runner that already holds part of the chain fetch only what is new.
- refs/mirrors/fetch/git, refs/mirrors/fetch/http: newline-separated mirror URLs.
- refs/mirrors/lfs/http: where the manifest of the mirror's LFS objects is (see lfs/manifest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import configsyntax
from .lfs.manifest import LfsAdvert, parse_advert

REF_BUNDLE_HTTP = "refs/mirrors/bundle/http"
REF_BUNDLE_TORRENT = "refs/mirrors/bundle/torrent"
REF_BUNDLE_MAGNET = "refs/mirrors/bundle/torrent-magnet"
REF_FETCH_GIT = "refs/mirrors/fetch/git"
REF_FETCH_HTTP = "refs/mirrors/fetch/http"
REF_LFS_HTTP = "refs/mirrors/lfs/http"
MIRROR_REF_PREFIX = "refs/mirrors/"

MAX_BLOB_BYTES = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


class MirrorListError(ValueError):
    """The blob's content cannot be used; the mirror is ignored with a warning."""


@dataclass
class BundleEntry:
    id: str
    uri: str
    creation_token: int
    sha256: str
    size: int
    pack_checksum: str = ""
    header_size: int = 0
    idx_uri: str = ""
    idx_sha256: str = ""
    idx_size: int = 0
    object_format: str = "sha1"
    base_sha256: str = ""  # increments: the chain's base
    parent_sha256: str = ""  # increments: the bundle right before it, whose tips are its prerequisites

    @property
    def incremental(self) -> bool:
        return bool(self.base_sha256 or self.parent_sha256)

    @property
    def has_index(self) -> bool:
        return bool(self.idx_uri and self.idx_sha256 and self.pack_checksum)


@dataclass
class BundleList:
    bundles: list[BundleEntry] = field(default_factory=list)
    mode: str = "all"
    heuristic: str = "creationToken"

    def render(self) -> str:
        sections: list[tuple[str, str | None, list[tuple[str, str]]]] = [
            ("bundle", None, [("version", "1"), ("mode", self.mode), ("heuristic", self.heuristic)])
        ]
        for b in self.bundles:
            items = [("uri", b.uri), ("creationToken", str(b.creation_token)), ("sha256", b.sha256),
                     ("size", str(b.size))]
            if b.pack_checksum:
                items += [("packChecksum", b.pack_checksum), ("headerSize", str(b.header_size))]
            if b.object_format != "sha1":
                items.append(("objectFormat", b.object_format))
            if b.idx_uri:
                items += [("idxUri", b.idx_uri), ("idxSha256", b.idx_sha256), ("idxSize", str(b.idx_size))]
            if b.base_sha256:
                items.append(("baseSha256", b.base_sha256))
            if b.parent_sha256:
                items.append(("parentSha256", b.parent_sha256))
            sections.append(("bundle", b.id, items))
        return configsyntax.render(sections)

    def newest(self) -> BundleEntry | None:
        """The chain's base: the full bundle a fresh clone starts from."""
        chain = self.chain()
        return chain[0] if chain else None

    def chain(self) -> list[BundleEntry]:
        """[base, increment 1, ..., increment N], following parentSha256 links from the newest base.

        Whoever can push refs/mirrors/* wrote the list: a missing parent, a creationToken
        that does not increase, an increment of another base (or object format) or a loop ends the chain
        there (the longest valid prefix is returned), and nothing here raises.
        """
        bases = [b for b in self.bundles if not b.incremental]
        if not bases:
            return []
        base = max(bases, key=lambda b: (b.creation_token, b.sha256))
        chain = [base]
        seen = {base.sha256}
        children: dict[str, list[BundleEntry]] = {}
        for b in self.bundles:
            if b.parent_sha256 and b.base_sha256 == base.sha256 and b.object_format == base.object_format:
                children.setdefault(b.parent_sha256, []).append(b)
        while True:
            last = chain[-1]
            after = [b for b in children.get(last.sha256, ())
                     if b.creation_token > last.creation_token and b.sha256 not in seen]
            if not after:
                return chain
            step = min(after, key=lambda b: (b.creation_token, b.sha256))
            chain.append(step)
            seen.add(step.sha256)

    def plan(self, have: Callable[[str], bool]) -> list[BundleEntry]:
        """What a client should download and apply, in order.

        The chain's elements after the last one `have(sha256)` says the client holds
        (none at all when it holds the newest: it is current); without any, the whole chain.
        """
        chain = self.chain()
        for i in range(len(chain) - 1, -1, -1):
            if have(chain[i].sha256):
                return chain[i + 1:]
        return chain


def parse_bundle_list(text: str) -> BundleList:
    try:
        entries = configsyntax.parse(text)
    except configsyntax.ConfigSyntaxError as exc:
        raise MirrorListError(f"bundle list: {exc}") from None
    top: dict[str, str] = {}
    per_id: dict[str, dict[str, str]] = {}
    for section, sub, key, value in entries:
        if section != "bundle":
            continue
        if sub is None:
            top[key] = value
        else:
            per_id.setdefault(sub, {})[key] = value
    if top.get("version") != "1":
        raise MirrorListError(f"bundle list: unsupported version {top.get('version')!r}")
    result = BundleList(mode=top.get("mode", "all"), heuristic=top.get("heuristic", ""))
    for bundle_id, keys in per_id.items():
        result.bundles.append(_entry(bundle_id, keys))
    if not result.bundles:
        raise MirrorListError("bundle list names no bundles")
    return result


def _entry(bundle_id: str, keys: dict[str, str]) -> BundleEntry:
    where = f"bundle list entry {bundle_id!r}"
    if not _BUNDLE_ID.match(bundle_id):
        raise MirrorListError(f"{where}: bad id")
    try:
        entry = BundleEntry(
            id=bundle_id,
            uri=keys["uri"],
            creation_token=int(keys.get("creationtoken", "0")),
            sha256=keys["sha256"].lower(),
            size=int(keys["size"]),
            pack_checksum=keys.get("packchecksum", "").lower(),
            header_size=int(keys.get("headersize", "0")),
            idx_uri=keys.get("idxuri", ""),
            idx_sha256=keys.get("idxsha256", "").lower(),
            idx_size=int(keys.get("idxsize", "0")),
            object_format=keys.get("objectformat", "sha1"),
            base_sha256=keys.get("basesha256", "").lower(),
            parent_sha256=keys.get("parentsha256", "").lower(),
        )
    except KeyError as exc:
        raise MirrorListError(f"{where}: missing key {exc.args[0]}") from None
    except ValueError:
        raise MirrorListError(f"{where}: a number is not a number") from None
    if not _SHA256.match(entry.sha256) or any(
        v and not _SHA256.match(v) for v in (entry.idx_sha256, entry.base_sha256, entry.parent_sha256)
    ):
        raise MirrorListError(f"{where}: sha256 must be 64 hex digits")
    if entry.size <= 0:
        raise MirrorListError(f"{where}: size must be positive")
    if entry.pack_checksum and not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", entry.pack_checksum):
        raise MirrorListError(f"{where}: bad packChecksum")
    for uri in (entry.uri, entry.idx_uri):
        if uri:
            check_url(uri, BUNDLE_SCHEMES, where)
    return entry


BUNDLE_SCHEMES = ("http", "https", "s3", "file")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


def check_url(url: str, schemes: tuple[str, ...], where: str = "mirror URL") -> str:
    """Refuse a URL that is not absolute, not one of `schemes`, or that the URL parser chokes on.

    Mirror URLs come from whoever can write refs/mirrors/*: a newline, a space, a bad port or
    an unbalanced IPv6 bracket must become a warning here, not an exception deep in a download.
    """
    if _UNSAFE.search(url):
        raise MirrorListError(f"{where}: URL {url[:80]!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        raise MirrorListError(f"{where}: URL {url[:80]!r} cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme and where != "mirror URL":
        raise MirrorListError(f"{where}: URI {url[:80]!r} is not absolute")
    if scheme not in schemes:
        raise MirrorListError(f"{where}: URL {url[:80]!r} must use one of: {', '.join(schemes)}")
    if scheme != "file" and not parts.hostname and not parts.netloc:
        raise MirrorListError(f"{where}: URL {url[:80]!r} names no host")
    if scheme == "s3" and not parts.path.strip("/"):
        raise MirrorListError(f"{where}: URL {url[:80]!r} names no object key")
    return url


def parse_url_list(text: str, schemes: tuple[str, ...]) -> list[str]:
    """Newline-separated URLs; blank lines and '#' comments are skipped."""
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        urls.append(check_url(line, schemes))
    return urls


def render_url_list(urls: list[str]) -> str:
    return "".join(f"{u}\n" for u in urls)


@dataclass
class MirrorSet:
    """Everything origin advertised under refs/mirrors/*, parsed; unusable blobs become warnings."""

    bundle_list: BundleList | None = None
    git_mirrors: list[str] = field(default_factory=list)
    http_mirrors: list[str] = field(default_factory=list)
    torrent: bytes | None = None
    magnet: str | None = None
    lfs: LfsAdvert | None = None  # where the manifest of the mirror's LFS objects is
    blob_ids: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.bundle_list or self.git_mirrors or self.http_mirrors or self.torrent or self.magnet)

    def to_json(self) -> dict[str, object]:
        return {
            "refs": self.blob_ids,
            "bundles": [vars(b) for b in (self.bundle_list.bundles if self.bundle_list else [])],
            "git_mirrors": self.git_mirrors,
            "http_mirrors": self.http_mirrors,
            "magnet": self.magnet,
            "has_torrent": self.torrent is not None,
            "lfs": vars(self.lfs) if self.lfs else None,
            "warnings": self.warnings,
        }


def parse_mirror_blobs(blobs: dict[str, bytes], blob_ids: dict[str, str]) -> MirrorSet:
    """Turn ref name -> blob content into a MirrorSet, skipping (with a warning) what is unusable."""
    found = MirrorSet(blob_ids=dict(blob_ids))
    for ref, data in sorted(blobs.items()):
        try:
            if len(data) > MAX_BLOB_BYTES:
                raise MirrorListError(f"{len(data)} bytes is over the {MAX_BLOB_BYTES} byte limit")
            if ref == REF_BUNDLE_TORRENT:
                found.torrent = data
                continue
            text = data.decode("utf-8")
            if ref == REF_BUNDLE_HTTP:
                found.bundle_list = parse_bundle_list(text)
            elif ref == REF_FETCH_GIT:
                found.git_mirrors = parse_url_list(text, ("git", "http", "https", "ssh"))
            elif ref == REF_FETCH_HTTP:
                found.http_mirrors = parse_url_list(text, ("http", "https"))
            elif ref == REF_BUNDLE_MAGNET:
                if not text.strip().startswith("magnet:?"):
                    raise MirrorListError("not a magnet URI")
                found.magnet = text.strip()
            elif ref == REF_LFS_HTTP:
                advert = parse_advert(text)
                check_url(advert.manifest, BUNDLE_SCHEMES, REF_LFS_HTTP)
                found.lfs = advert
        except (MirrorListError, UnicodeDecodeError) as exc:
            found.warnings.append(f"ignoring {ref}: {exc}")
        except Exception as exc:  # a blob's content must never stop a checkout, only its mirror
            found.warnings.append(f"ignoring {ref}: {type(exc).__name__}: {exc}")
    return found
