"""What the mirror publishes for LFS, and how a checkout reads it back without trusting it.

Two documents:

- the blob of `refs/mirrors/lfs/http`, in git's config syntax like the bundle list:

      [lfs]
          version = 1
          manifest = https://mirror.example/repo/lfs/manifests/<sha256>.json
          sha256 = <sha256 of the manifest>
          size = <bytes of the manifest>
          objects = <number of objects it lists>

- the manifest, JSON, stored under its own sha256:

      {"version": 1, "base": "../objects/", "objects": {"<oid>": <size>, ...}}

  `base` is relative to the manifest's URL; an object's URL is
  `<base>/<oid[0:2]>/<oid[2:4]>/<oid>`, the layout git-lfs uses in `.git/lfs/objects`.

Whoever can push refs/mirrors/* wrote both, so everything is checked here: sizes are
bounded, ids are 64 hex digits, the base cannot change the URL's scheme or host. None
of this is a reason to trust an object: each is hashed against its pointer's oid.
This module imports nothing else from mirrorci but the config syntax (mirrorlist.py imports it).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import configsyntax

VERSION = 1
MAX_MANIFEST_BYTES = 32 << 20  # ~400,000 objects; a ref claiming more is ignored
MAX_OBJECT_SIZE = 1 << 50  # what a pointer's size may say (a sanity bound, far above any real file)
BASE = "../objects/"  # from <name>/lfs/manifests/ to <name>/lfs/objects/
_OID = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class LfsManifestError(ValueError):
    """The ref's blob or the manifest cannot be used; the checkout takes LFS objects from origin."""


@dataclass(frozen=True)
class LfsAdvert:
    """The content of refs/mirrors/lfs/http: where the manifest is and what it must hash to."""

    manifest: str
    sha256: str
    size: int
    objects: int = 0

    def render(self) -> str:
        items = [("version", str(VERSION)), ("manifest", self.manifest), ("sha256", self.sha256),
                 ("size", str(self.size)), ("objects", str(self.objects))]
        return configsyntax.render([("lfs", None, items)])


def parse_advert(text: str) -> LfsAdvert:
    try:
        entries = configsyntax.parse(text)
    except configsyntax.ConfigSyntaxError as exc:
        raise LfsManifestError(f"LFS ref: {exc}") from None
    keys = {key: value for section, sub, key, value in entries if section == "lfs" and sub is None}
    if keys.get("version") != str(VERSION):
        raise LfsManifestError(f"LFS ref: unsupported version {keys.get('version')!r}")
    try:
        advert = LfsAdvert(manifest=keys["manifest"], sha256=keys["sha256"].lower(), size=int(keys["size"]),
                           objects=int(keys.get("objects", "0")))
    except KeyError as exc:
        raise LfsManifestError(f"LFS ref: missing key {exc.args[0]}") from None
    except ValueError:
        raise LfsManifestError("LFS ref: a number is not a number") from None
    if not _OID.fullmatch(advert.sha256):
        raise LfsManifestError("LFS ref: sha256 must be 64 hex digits")
    if not 0 < advert.size <= MAX_MANIFEST_BYTES:
        raise LfsManifestError(f"LFS ref: the manifest's size must be 1 to {MAX_MANIFEST_BYTES} bytes")
    return advert


def render_manifest(objects: dict[str, int], base: str = BASE) -> bytes:
    """Canonical bytes (sorted keys, no spaces): the same objects always give the same sha256."""
    body = {"version": VERSION, "base": base, "objects": dict(sorted(objects.items()))}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class Manifest:
    base: str
    objects: dict[str, int]


def parse_manifest(data: bytes, advert: LfsAdvert) -> Manifest:
    """Check the bytes against the ref (size, sha256) before reading a single key."""
    if len(data) != advert.size:
        raise LfsManifestError(f"the LFS manifest is {len(data)} bytes, the ref says {advert.size}")
    if hashlib.sha256(data).hexdigest() != advert.sha256:
        raise LfsManifestError("the LFS manifest's sha256 does not match the ref")
    try:
        body: Any = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise LfsManifestError(f"the LFS manifest is not JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict) or body.get("version") != VERSION:
        raise LfsManifestError("the LFS manifest has no supported version")
    base, objects = body.get("base"), body.get("objects")
    if not isinstance(base, str) or not isinstance(objects, dict):
        raise LfsManifestError("the LFS manifest needs a 'base' string and an 'objects' map")
    check_base(base)
    for oid, size in objects.items():
        if not _OID.fullmatch(oid) or type(size) is not int or not 0 <= size <= MAX_OBJECT_SIZE:
            raise LfsManifestError(f"the LFS manifest has a bad entry {str(oid)[:80]!r}")
    return Manifest(base, objects)


def check_base(base: str) -> None:
    """A relative path only: no scheme, no host, no query; it cannot send a client elsewhere."""
    parts = urlsplit(base)
    if _UNSAFE.search(base) or parts.scheme or parts.netloc or parts.query or parts.fragment or base.startswith("/"):
        raise LfsManifestError(f"the LFS manifest's base {base[:80]!r} must be a relative path")


def object_path(oid: str) -> str:
    """`aa/bb/<oid>`: where git-lfs keeps an object under its media directory, and the store too."""
    return f"{oid[0:2]}/{oid[2:4]}/{oid}"


def object_url(manifest_url: str, base: str, oid: str) -> str:
    """The URL of an object: `base` resolved against the manifest's URL, whatever the scheme (s3:// too)."""
    check_base(base)
    parts = urlsplit(manifest_url)
    directory = posixpath.dirname(parts.path)
    path = posixpath.normpath(posixpath.join(directory or "/", base, object_path(oid)))
    if not path.startswith("/"):
        path = "/" + path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
