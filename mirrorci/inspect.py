"""`mirrorci inspect`: what a remote advertises under refs/mirrors/*, parsed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .gitcmd import Git
from .mirrorlist import MirrorSet, parse_mirror_blobs
from .remote import BlobCache, ls_remote, read_mirror_blobs


def inspect_remote(url: str, cache_dir: Path | None = None) -> MirrorSet:
    with tempfile.TemporaryDirectory(prefix="mirrorci-inspect-") as tmp:
        git = Git(Path(tmp))
        git.run("init", "--quiet", "--bare")
        refs = ls_remote(git, url).mirror_refs()
        blobs, _ = read_mirror_blobs(git, url, refs, BlobCache(cache_dir)) if refs else ({}, 0)
    return parse_mirror_blobs(blobs, refs)


def describe(mirrors: MirrorSet) -> str:
    if mirrors.empty and not mirrors.warnings:
        return "no mirrors advertised under refs/mirrors/"
    lines = [f"{ref}  {oid}" for ref, oid in sorted(mirrors.blob_ids.items())]
    if mirrors.bundle_list:
        for b in sorted(mirrors.bundle_list.bundles, key=lambda b: -b.creation_token):
            lines.append(f"bundle {b.id}: {b.uri}")
            lines.append(f"  size {b.size}, sha256 {b.sha256}, creationToken {b.creation_token}")
            if b.has_index:
                lines.append(f"  index {b.idx_uri} ({b.idx_size} bytes), pack {b.pack_checksum}")
    for url in mirrors.git_mirrors:
        lines.append(f"git mirror: {url}")
    for url in mirrors.http_mirrors:
        lines.append(f"http git mirror: {url}")
    if mirrors.magnet:
        lines.append(f"magnet: {mirrors.magnet}")
    lines += [f"warning: {w}" for w in mirrors.warnings]
    return "\n".join(lines)
