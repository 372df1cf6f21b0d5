"""Command-line options of the torrent features, for `publish` and `checkout`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .transmission import ENV_PASSWORD, ENV_USER

_DAEMON_HELP = (f"Transmission RPC URL, http://[user:pass@]host:9091/transmission/rpc "
                f"(credentials also from {ENV_USER} / {ENV_PASSWORD}; never printed)")


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("BitTorrent (a torrent whose web seed is the bundle's URL)")
    g.add_argument("--torrent", action="store_true",
                   help="also publish a torrent (implied by --tracker and --transmission)")
    g.add_argument("--tracker", action="append", default=[], metavar="URL", help="announce URL (repeatable)")
    g.add_argument("--transmission", metavar="URL", help=_DAEMON_HELP + "; the daemon then seeds the release")
    g.add_argument("--transmission-download-dir", metavar="DIR",
                   help="shared-directory mode: a directory the daemon shares with the publisher, as the daemon "
                        "sees it; the bundle is placed there (default: the daemon fetches it from the web seed)")
    g.add_argument("--transmission-local-dir", type=Path, metavar="DIR",
                   help="the same directory as the publisher sees it, if the path differs")
    g.add_argument("--seed", choices=("required", "optional"), default="required",
                   help="optional: a daemon that cannot seed is a warning, not a failure (default required)")
    g.add_argument("--seed-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for the daemon to report seeding (default 600)")
    g.add_argument("--keep", type=int, metavar="N",
                   help="also keep the N newest torrents of this mirror in the daemon (by default it keeps "
                        "what the store keeps: the bases the new and the previous list name, and what --grace protects)")


def publish_options(args: argparse.Namespace):  # -> TorrentPublishOptions
    from .publishing import TorrentPublishOptions

    opts = TorrentPublishOptions(
        enabled=args.torrent, trackers=list(args.tracker), transmission=args.transmission,
        download_dir=args.transmission_download_dir, local_dir=args.transmission_local_dir,
        seed=args.seed, seed_timeout=args.seed_timeout, keep=args.keep,
    )
    opts.validate()
    return opts


def add_checkout_arguments(c: argparse.ArgumentParser) -> None:
    g = c.add_argument_group("BitTorrent (--prefer torrent,...)")
    g.add_argument("--transmission", metavar="URL", help=_DAEMON_HELP + "; it downloads and keeps seeding")
    g.add_argument("--transmission-download-dir", metavar="DIR",
                   help="where the daemon should download, as the daemon sees it (default: its own download dir)")
    g.add_argument("--transmission-local-dir", type=Path, metavar="DIR",
                   help="the daemon's download directory as this runner sees it, if the path differs")
    g.add_argument("--torrent-client", choices=("auto", "transmission", "embedded"), default="auto",
                   help="auto: the daemon if --transmission is given, else the embedded libtorrent client")
    g.add_argument("--torrent-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="time limit for the torrent download before falling back to the next method (default 300)")
    g.add_argument("--web-seed-delay", type=float, default=0.0, metavar="SECONDS",
                   help="embedded client: fetch from peers alone for this long before using the web seed, "
                        "so a fleet pulls the bundle from the store about once (default 0)")


def checkout_options(args: argparse.Namespace):  # -> TorrentOptions
    from ..sources.torrent import TorrentOptions

    opts = TorrentOptions(
        transmission=args.transmission, download_dir=args.transmission_download_dir,
        local_dir=args.transmission_local_dir, time_limit=args.torrent_timeout, client=args.torrent_client,
        web_seed_delay=args.web_seed_delay,
    )
    opts.validate()
    return opts
