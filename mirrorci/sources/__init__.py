"""Mirror methods, one module each, behind the `Source` interface in `base`.

http, s3 and git live here; the torrent method, big enough for its own package, is
mirrorci/torrent/source.py. registry.py lists them all.
"""

from __future__ import annotations

from .base import FetchContext, Fetched, Source

__all__ = ["FetchContext", "Fetched", "Source"]
