"""Build a release's torrent and magnet URI with torf, and read them back.

Piece size is chosen on purpose: Transmission fetches a web seed one HTTP request
per piece, so torf's default for small files (128 KiB at 50 MB) makes web-seed
downloads several times slower than 4 MiB pieces.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..fsutil import link_or_copy
from . import TorrentError

TORRENT_NAME = "bundles"  # the store's directory: <public-url>/<name>/bundles/<sha256>.bundle
MIN_PIECE = 4 << 20
MAX_PIECE = 16 << 20
TARGET_PIECES = 2048


def choose_piece_size(total: int) -> int:
    """4 MiB, doubled (up to 16 MiB) only to keep very large releases near 2048 pieces."""
    size = MIN_PIECE
    while size < MAX_PIECE and total > size * TARGET_PIECES:
        size *= 2
    return size


@dataclass
class TorrentMeta:
    """What mirrorci needs to know about a torrent (built here or read from a ref)."""

    info_hash: str
    name: str
    piece_size: int
    pieces: int
    total_size: int
    files: dict[str, int]  # path inside the torrent (without the torrent name) -> size
    trackers: list[str] = field(default_factory=list)
    web_seeds: list[str] = field(default_factory=list)
    comment: str = ""
    magnet: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "info_hash": self.info_hash, "name": self.name, "piece_size": self.piece_size, "pieces": self.pieces,
            "size": self.total_size, "files": self.files, "trackers": self.trackers, "web_seeds": self.web_seeds,
            "magnet": self.magnet,
        }


@dataclass
class BuiltTorrent:
    data: bytes
    meta: TorrentMeta
    content_dir: Path  # the directory named TORRENT_NAME holding the files


def stage(workdir: Path, files: dict[str, Path]) -> Path:
    """Lay out `workdir/bundles/<name>` for the files (hard links where possible)."""
    content = workdir / TORRENT_NAME
    content.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        link_or_copy(src, content / name)
    return content


def build(content_dir: Path, *, trackers: list[str], web_seeds: list[str], comment: str) -> BuiltTorrent:
    import torf

    total = sum(p.stat().st_size for p in content_dir.iterdir() if p.is_file())
    try:
        torrent = torf.Torrent(
            path=content_dir, trackers=list(trackers) or None,  # a flat list: each URL is its own tier
            webseeds=web_seeds or None, comment=comment, created_by=f"mirrorci {__version__}", private=False,
            creation_date=None,
        )
        torrent.piece_size = choose_piece_size(total)
        torrent.generate(threads=2)
        data = torrent.dump()
    except torf.TorfError as exc:
        raise TorrentError(f"cannot build the torrent: {exc}") from None
    return BuiltTorrent(data, parse(data), content_dir)


def parse(data: bytes) -> TorrentMeta:
    import torf

    try:
        torrent = torf.Torrent.read_stream(io.BytesIO(data))
    except torf.TorfError as exc:
        raise TorrentError(f"not a usable .torrent: {exc}") from None
    files: dict[str, int] = {}
    for f in torrent.files:
        parts = Path(str(f)).parts
        files["/".join(parts[1:]) if len(parts) > 1 else parts[0]] = f.size
    return TorrentMeta(
        info_hash=torrent.infohash, name=torrent.name or "", piece_size=torrent.piece_size, pieces=torrent.pieces,
        total_size=torrent.size, files=files, trackers=[t for tier in torrent.trackers for t in tier],
        web_seeds=list(torrent.webseeds), comment=torrent.comment or "", magnet=str(torrent.magnet()),
    )


def magnet_info_hash(uri: str) -> str:
    import torf

    try:
        return torf.Magnet.from_string(uri.strip()).infohash.lower()
    except torf.TorfError as exc:
        raise TorrentError(f"not a usable magnet URI: {exc}") from None


def web_seed_base(bundle_url: str) -> str | None:
    """The directory URL above `bundles/` for an http(s) bundle URL, else None."""
    parts = urlsplit(bundle_url)
    if parts.scheme not in ("http", "https"):
        return None
    head, sep, _ = bundle_url.rpartition(f"/{TORRENT_NAME}/")
    return head + "/" if sep else None
