"""The torrent back-end's declaration: its options for `publish` and `checkout`, its secrets,
and the checkout's settings (`TorrentOptions`; publish's are `publishing.TorrentPublishOptions`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..backend import Backend, Secret, option
from ..errors import UsageError
from .transmission import ENV_PASSWORD, ENV_USER

CLIENTS = ("auto", "transmission", "embedded")
_DAEMON_HELP = (f"Transmission RPC URL, http://[user:pass@]host:9091/transmission/rpc "
                f"(credentials also from {ENV_USER} / {ENV_PASSWORD}; never printed)")


@dataclass
class TorrentOptions:
    """How a checkout downloads a torrent."""

    transmission: str | None = None  # daemon URL (credentials masked)
    download_dir: str | None = None  # the daemon's download directory, as the daemon sees it
    local_dir: Path | None = None  # the same directory as this process sees it
    time_limit: float = 300.0
    client: str = "auto"
    listen: str = "0.0.0.0:0"
    web_seed_delay: float = 0.0  # embedded client: peers alone for this long before the web seeds join

    @property
    def configured(self) -> bool:
        """The user set up a client: the swarm then comes first by default."""
        return bool(self.transmission or self.client != "auto")

    def validate(self) -> None:
        if self.client not in CLIENTS:
            raise UsageError(f"--torrent-client must be one of {', '.join(CLIENTS)}")
        if self.time_limit <= 0:
            raise UsageError("--torrent-timeout must be a positive number of seconds")
        if self.client == "transmission" and not self.transmission:
            raise UsageError("--torrent-client transmission needs --transmission URL")
        if self.transmission:
            from .transmission import parse_url

            parse_url(self.transmission)


def url_password(url: str) -> list[str]:
    """The password in a daemon URL, the part of it to mask."""
    try:
        password = urlsplit(url if "://" in url else f"http://{url}").password
    except ValueError:
        return []
    return sorted({password, unquote(password)}) if password else []  # as written, and as the daemon gets it


def _from_args(command: str, args: argparse.Namespace) -> object:
    if command == "publish":
        from .publishing import TorrentPublishOptions

        publishing = TorrentPublishOptions(
            enabled=args.torrent, trackers=list(args.tracker), transmission=args.transmission,
            download_dir=args.transmission_download_dir, local_dir=args.transmission_local_dir,
            seed=args.seed, seed_timeout=args.seed_timeout, keep=args.keep,
        )
        publishing.validate()
        return publishing
    opts = TorrentOptions(
        transmission=args.transmission, download_dir=args.transmission_download_dir,
        local_dir=args.transmission_local_dir, time_limit=args.torrent_timeout, client=args.torrent_client,
        web_seed_delay=args.web_seed_delay,
    )
    opts.validate()
    return opts


BACKEND = Backend(
    name="torrent",
    titles={"publish": "BitTorrent (a torrent whose web seed is the bundle's URL)",
            "checkout": "BitTorrent (--prefer torrent,...)"},
    options=(
        # publish: build, announce and seed a torrent of each base
        option("--torrent", "publish", action="store_true",
               help="also publish a torrent (implied by --tracker and --transmission)"),
        option("--tracker", "publish", action="append", default=[], metavar="URL", help="announce URL (repeatable)"),
        option("--transmission", "publish", metavar="URL", secret_parts=url_password,
               help=_DAEMON_HELP + "; the daemon then seeds the release"),
        option("--transmission-download-dir", "publish", metavar="DIR",
               help="shared-directory mode: a directory the daemon shares with the publisher, as the daemon "
                    "sees it; the bundle is placed there (default: the daemon fetches it from the web seed)"),
        option("--transmission-local-dir", "publish", type=Path, metavar="DIR",
               help="the same directory as the publisher sees it, if the path differs"),
        option("--seed", "publish", choices=("required", "optional"), default="required",
               help="optional: a daemon that cannot seed is a warning, not a failure (default required)"),
        option("--seed-timeout", "publish", type=float, default=600.0, metavar="SECONDS",
               help="how long to wait for the daemon to report seeding (default 600)"),
        option("--keep", "publish", type=int, metavar="N",
               help="also keep the N newest torrents of this mirror in the daemon (by default it keeps what the "
                    "store keeps: the bases the new and the previous list name, and what --grace protects)"),
        # checkout: download through a daemon or the embedded client
        option("--transmission", "checkout", metavar="URL", secret_parts=url_password,
               help=_DAEMON_HELP + "; it downloads and keeps seeding"),
        option("--transmission-download-dir", "checkout", metavar="DIR",
               help="where the daemon should download, as the daemon sees it (default: its own download dir)"),
        option("--transmission-local-dir", "checkout", type=Path, metavar="DIR",
               help="the daemon's download directory as this runner sees it, if the path differs"),
        option("--torrent-client", "checkout", choices=CLIENTS, default="auto",
               help="auto: the daemon if --transmission is given, else the embedded libtorrent client"),
        option("--torrent-timeout", "checkout", type=float, default=300.0, metavar="SECONDS",
               help="time limit for the torrent download before falling back to the next method (default 300)"),
        option("--web-seed-delay", "checkout", type=float, default=0.0, metavar="SECONDS",
               help="embedded client: fetch from peers alone for this long before using the web seed, "
                    "so a fleet pulls the bundle from the store about once (default 0)"),
    ),
    build=_from_args,
    secrets=(
        Secret("transmission-user", ENV_USER, masked=False, help="Transmission RPC user name"),
        Secret("transmission-password", ENV_PASSWORD, help="Transmission RPC password"),
    ),
)
