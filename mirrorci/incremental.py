"""Incremental bundles: what changed since the previous release, for runners that have it.

A warm self-hosted runner keeps the previous release's objects in its cache; the
incremental bundle (prerequisites: the previous release's tips) brings it up to
date with a download the size of the change, and origin serves nothing. Its pack
is thin, so clients always index it (`index-pack --fix-thin`), and it is listed
with `baseSha256` naming the full bundle it builds on. Git's own bundle-URI client
still starts from the full bundle: it has the newest creationToken.
"""

from __future__ import annotations

import io
from pathlib import Path

from . import bundle, log
from .bundle import BundleFormatError, BundleHeader
from .gitcmd import Git
from .mirrorlist import BundleEntry
from .store import Store


def previous_tips(store: Store, key: str, previous: BundleEntry) -> list[str] | None:
    """The previous release's ref tips, read from its bundle's header in the store.

    `headerSize` comes from the previous list, which whoever can push refs/mirrors/*
    may have written: it is a claim, so no more than bundle.MAX_HEADER_BYTES is read,
    and whatever is read must parse as a bundle header on its own.
    """
    if previous.header_size <= 0:
        return None
    if previous.header_size > bundle.MAX_HEADER_BYTES:
        log.warn(f"the previous bundle list claims a {previous.header_size} byte bundle header, over the "
                 f"{bundle.MAX_HEADER_BYTES} byte limit: no incremental bundle")
        return None
    data = store.read_prefix(key, previous.header_size)
    if not data:
        return None
    try:
        header = bundle.read_header(io.BytesIO(data))
    except BundleFormatError as exc:
        log.warn(f"the previous release's bundle header cannot be read ({exc}): no incremental bundle")
        return None
    return sorted({oid for oid, _ in header.refs})


def create(git: Git, dest: Path, refnames: list[str], tips: list[str]) -> BundleHeader | None:
    """Bundle of refnames minus everything reachable from tips; None when nothing changed."""
    exclude = _commits(git, tips)
    if not exclude:
        return None
    revs = [*refnames, "HEAD", *exclude] if git.ok("rev-parse", "--verify", "-q", "HEAD^{commit}") else [*refnames, *exclude]
    result = git.run("bundle", "create", "-q", str(dest), "--stdin", input="\n".join(revs) + "\n", check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip()
        if "empty bundle" in detail:
            log.info("nothing changed since the previous release: no incremental bundle")
        else:
            log.warn(f"no incremental bundle: {detail.splitlines()[-1] if detail else result.returncode}")
        return None
    return bundle.read_header_file(dest)


def _commits(git: Git, tips: list[str]) -> list[str]:
    """`^<commit>` for each tip the repository has as (or peels to) a commit, in one git call.

    Blobs, trees and commits the repository no longer has (history rewritten) are skipped.
    """
    if not tips:
        return []
    out = git.out("cat-file", "--batch-check=%(objectname) %(objecttype)", input="".join(f"{oid}^{{commit}}\n" for oid in tips))
    found = []
    for line in out.splitlines():
        oid, _, kind = line.partition(" ")
        if kind == "commit":
            found.append("^" + oid)
    return sorted(set(found))
