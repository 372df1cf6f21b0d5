"""BitTorrent for releases: build the .torrent and magnet, seed through Transmission, download through
Transmission or an embedded libtorrent client.

The torrent of a release is a two-file torrent named `bundles` holding
`<sha256>.bundle` and `<sha256>.idx`, exactly the store's `<name>/bundles/` layout,
so `<public-url>/<name>/` serves as its BEP-19 web seed.
"""

from ..errors import MirrorciError


class TorrentError(MirrorciError):
    """A torrent could not be built, seeded or downloaded."""
