"""Mirror methods, one module each, behind the `Source` interface in `base`."""

from __future__ import annotations

from ..errors import UsageError
from .base import FetchContext, Fetched, Source
from .git_mirror import GitMirrorSource
from .http import HttpSource
from .s3 import S3Source
from .torrent import TorrentSource

SOURCES: dict[str, Source] = {s.name: s for s in (HttpSource(), S3Source(), GitMirrorSource(), TorrentSource())}
DEFAULT_PREFERENCE = ("http", "s3", "git")

__all__ = ["SOURCES", "DEFAULT_PREFERENCE", "FetchContext", "Fetched", "Source", "parse_preference"]


def parse_preference(text: str | None, torrent_configured: bool = False) -> list[str]:
    """--prefer as a list; by default the swarm comes first when the user set up a torrent client."""
    if not text:
        return (["torrent"] if torrent_configured else []) + list(DEFAULT_PREFERENCE)
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in SOURCES]
    if unknown or not methods:
        raise UsageError(f"--prefer: unknown method {', '.join(unknown) or '(none)'}; choose from {', '.join(SOURCES)}")
    return methods
