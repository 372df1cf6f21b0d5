"""`mirrorci inspect`: what a remote advertises under refs/mirrors/*, parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .gitcmd import Git
from .mirrorlist import MirrorSet, parse_mirror_blobs
from .remote import BlobCache, ls_remote, read_mirror_blobs


def inspect_remote(url: str, cache_dir: Path | None = None) -> MirrorSet:
    git = Git()
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
    torrent = torrent_info(mirrors)
    if torrent.get("info_hash"):
        lines.append(f"torrent {torrent['name']}: info hash {torrent['info_hash']}, "
                     f"{torrent['pieces']} pieces of {torrent['piece_size']} bytes")
        lines += [f"  tracker: {t}" for t in torrent["trackers"]] or ["  tracker: none"]
        lines += [f"  web seed: {w}" for w in torrent["web_seeds"]] or ["  web seed: none"]
    elif torrent.get("error"):
        lines.append(f"torrent: {torrent['error']}")
    if mirrors.magnet:
        lines.append(f"magnet: {mirrors.magnet}")
        if torrent.get("magnet_info_hash") and torrent.get("info_hash") not in (None, torrent["magnet_info_hash"]):
            lines.append("  warning: the magnet's info hash differs from the torrent's")
    lines += [f"warning: {w}" for w in mirrors.warnings]
    return "\n".join(lines)


def torrent_info(mirrors: MirrorSet) -> dict[str, Any]:
    """The advertised torrent parsed with torf (info hash, trackers, web seeds), and the magnet's info hash."""
    if not (mirrors.torrent or mirrors.magnet):
        return {}
    from .torrent import TorrentError, make

    info: dict[str, Any] = {}
    try:
        if mirrors.torrent:
            info.update(make.parse(mirrors.torrent).to_json())
        if mirrors.magnet:
            info["magnet_info_hash"] = make.magnet_info_hash(mirrors.magnet)
    except TorrentError as exc:
        info["error"] = str(exc)
    return info


def inspect_json(mirrors: MirrorSet) -> dict[str, object]:
    data = mirrors.to_json()
    data["torrent"] = torrent_info(mirrors) or None
    return data
