"""LFS objects from the mirror: the manifest the ref names, then each object, every byte checked.

Nothing the mirror says is trusted. The manifest must hash to the sha256 in origin's
ref and be no larger than the ref says; an object is read up to the size its pointer
(from origin's tree) gives and no further, must hash to the pointer's oid, and only
then is renamed into `.git/lfs/objects/aa/bb/<oid>`, where git-lfs reads it. Any
failure leaves nothing behind and sends that object (or all of them) to origin's
LFS server. Requests go out bare, as for bundles (see sources/http.py): no cookies,
netrc or Authorization. The whole attempt runs under one Deadline (--timeout and
--stall-timeout).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from .. import log, ondemand
from ..deadline import Deadline
from ..errors import SourceFailed, UsageError
from ..progress import Progress
from ..s3config import S3Options, split_s3_url
from ..sources.http import open_file, open_http
from .manifest import LfsAdvert, Manifest, object_url, parse_manifest
from .pointer import object_file

CHUNK = 1 << 16
PARALLEL_DOWNLOADS = 8


@dataclass
class MirrorOutcome:
    placed: dict[str, int] = field(default_factory=dict)  # oid -> bytes now in the LFS storage
    failed: dict[str, str] = field(default_factory=dict)  # oid -> why the mirror's copy was not used
    unlisted: int = 0  # objects the manifest does not list (with that size)


class Opener:
    """Opens a mirror URL by scheme: http(s), file:// (only if allowed) and s3:// (through the S3 API)."""

    def __init__(self, deadline: Deadline, allow_file_urls: bool, s3: S3Options) -> None:
        self.deadline = deadline
        self.allow_file_urls = allow_file_urls
        self.s3 = s3
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self, url: str) -> BinaryIO:
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            raise SourceFailed(f"bad mirror URL: {exc}") from None
        if scheme in ("http", "https"):
            return open_http(url, self.deadline)
        if scheme == "file":
            if not self.allow_file_urls:
                raise SourceFailed("the LFS manifest is at a file:// URL; pass --allow-file-urls to use it")
            return open_file(url)
        if scheme == "s3":
            return self._open_s3(url)
        raise SourceFailed(f"refusing {scheme}: URL for LFS objects")

    def _open_s3(self, url: str) -> BinaryIO:
        from ..sources import s3 as s3source  # boto3 is imported only once an s3:// URL is used

        bucket, key = split_s3_url(url)
        with self._lock:
            if self._client is None:
                ondemand.require("s3", "LFS objects from an s3:// mirror", self.deadline.remaining())
                try:
                    self._client = s3source._bounded(lambda: s3source._client(self.s3, self.deadline), self.deadline,
                                                     "setting up the S3 client")
                except (SourceFailed, UsageError):
                    raise
                except Exception as exc:
                    raise SourceFailed(f"cannot set up the S3 client: {s3source._reason(exc)}") from None
        try:
            response = s3source._bounded(lambda: self._client.get_object(Bucket=bucket, Key=key), self.deadline,
                                         f"S3 get s3://{bucket}/{key}")
        except SourceFailed:
            raise
        except Exception as exc:
            raise SourceFailed(f"S3 get s3://{bucket}/{key} failed: {s3source._reason(exc)}") from None
        return s3source._S3Body(response["Body"], self.deadline)  # type: ignore[return-value]


def read_bounded(body: BinaryIO, limit: int, deadline: Deadline, sink: Callable[[bytes], None]) -> int:
    """Copy `body` to `sink`, one network read at a time; more than `limit` bytes is a failure."""
    read = getattr(body, "read1", body.read)
    got = 0
    while True:
        deadline.check("the LFS downloads from the mirror")
        chunk = read(CHUNK)
        if not chunk:
            return got
        got += len(chunk)
        if got > limit:
            raise SourceFailed(f"the mirror sent more than the {limit} bytes expected")
        sink(chunk)


def read_manifest(advert: LfsAdvert, opener: Opener) -> Manifest:
    parts: list[bytes] = []
    with opener(advert.manifest) as body:
        read_bounded(body, advert.size, opener.deadline, parts.append)
    return parse_manifest(b"".join(parts), advert)


def fetch_objects(advert: LfsAdvert, needed: dict[str, int], media: Path, opener: Opener,
                  show_progress: bool = True) -> MirrorOutcome:
    """Place every needed object the manifest lists; raises (SourceFailed, LfsManifestError) only for the manifest."""
    manifest = read_manifest(advert, opener)
    listed = {oid: size for oid, size in needed.items() if manifest.objects.get(oid) == size}
    outcome = MirrorOutcome(unlisted=len(needed) - len(listed))
    if not listed:
        return outcome
    progress = Progress("LFS objects from the mirror", sum(listed.values())) if show_progress else None
    lock = threading.Lock()

    def count(n: int) -> None:
        if progress:
            with lock:
                progress(n)

    def one(oid: str) -> tuple[str, str | None]:
        try:
            url = object_url(advert.manifest, manifest.base, oid)
            download_object(opener, url, oid, listed[oid], media, count)
            return oid, None
        except SourceFailed as exc:
            return oid, str(exc)
        except Exception as exc:  # whatever a mirror does wrong costs only this object
            return oid, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'failed'}"

    try:
        with ThreadPoolExecutor(max_workers=min(PARALLEL_DOWNLOADS, len(listed))) as pool:
            for oid, error in pool.map(one, sorted(listed)):
                if error is None:
                    outcome.placed[oid] = listed[oid]
                else:
                    outcome.failed[oid] = error
    finally:
        if progress:
            progress.close()
    return outcome


def download_object(opener: Opener, url: str, oid: str, size: int, media: Path, count: Callable[[int], None]) -> None:
    """Download one object beside the LFS storage, check it, and rename it into place."""
    dest = object_file(media, oid)
    tmp_dir = media.parent / "tmp"  # git-lfs's own temporary directory: same file system, so a rename
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=f"{oid}-", suffix=".mirror")
    keep = False
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            def sink(chunk: bytes) -> None:
                digest.update(chunk)
                out.write(chunk)
                count(len(chunk))

            with opener(url) as body:
                got = read_bounded(body, size, opener.deadline, sink)
        if got != size:
            raise SourceFailed(f"LFS object {oid[:12]}: {got} bytes, its pointer says {size}")
        if digest.hexdigest() != oid:
            raise SourceFailed(f"LFS object {oid[:12]}: its sha256 does not match its oid")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        keep = True
    finally:
        if not keep:
            Path(tmp).unlink(missing_ok=True)


def describe_failures(outcome: MirrorOutcome) -> str | None:
    reasons = []
    if outcome.unlisted:
        reasons.append(f"{outcome.unlisted} object(s) not in the mirror's LFS manifest")
    if outcome.failed:
        first = next(iter(sorted(outcome.failed.items())))[1]
        reasons.append(f"{len(outcome.failed)} object(s) from the mirror not used ({log.redact(first)})")
    return "; ".join(reasons) or None
