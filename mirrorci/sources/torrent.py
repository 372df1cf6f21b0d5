"""Bundles over BitTorrent: the torrent from refs/mirrors/bundle/torrent (the magnet only as
a last resort), downloaded by a Transmission daemon (--transmission) or the embedded
libtorrent client, checked against the bundle list's sha256, then applied like any download.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import log, ondemand
from ..bundle import file_sha256
from ..errors import SourceFailed, UsageError
from ..apply import check_room
from ..mirrorlist import BundleEntry
from ..progress import human_bytes
from .base import FetchContext, Fetched, apply_entry

CLIENTS = ("auto", "transmission", "embedded")


@dataclass
class TorrentOptions:
    transmission: str | None = None  # daemon URL (credentials masked)
    download_dir: str | None = None  # the daemon's download directory, as the daemon sees it
    local_dir: Path | None = None  # the same directory as this process sees it
    time_limit: float = 300.0
    client: str = "auto"
    listen: str = "0.0.0.0:0"
    web_seed_delay: float = 0.0  # embedded client: peers alone for this long before the web seeds join

    def validate(self) -> None:
        if self.client not in CLIENTS:
            raise UsageError(f"--torrent-client must be one of {', '.join(CLIENTS)}")
        if self.time_limit <= 0:
            raise UsageError("--torrent-timeout must be a positive number of seconds")
        if self.client == "transmission" and not self.transmission:
            raise UsageError("--torrent-client transmission needs --transmission URL")
        if self.transmission:
            from ..torrent.transmission import parse_url

            parse_url(self.transmission)


class _Reporter:
    """Progress lines: bytes, peers, rate; live in a terminal, every few seconds in CI."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty() and not log._quiet
        self.every = 0.5 if self.tty else 5.0
        self.last = 0.0

    def __call__(self, done: int, total: int, rate: int, peers: int, extra: str = "") -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        line = (f"{self.label}: {human_bytes(done)} / {human_bytes(total)}{pct}, {human_bytes(rate)}/s, "
                f"{peers} peer{'s' if peers != 1 else ''}{extra}")
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line)
            sys.stderr.flush()
        else:
            log.info(line)

    def close(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        log.info(f"{self.label}: {text} in {time.monotonic() - self.start:.2f}s")


def verify_download(bundle: Path, idx: Path | None, entry: BundleEntry) -> None:
    """The finished files must be exactly what origin's bundle list names, whatever the torrent said."""
    if not bundle.is_file():
        raise SourceFailed(f"the torrent client reported completion, but {bundle} is missing")
    if bundle.stat().st_size != entry.size or file_sha256(bundle) != entry.sha256:
        raise SourceFailed("downloaded bundle does not match the sha256 in the bundle list (corrupt or stale torrent)")
    if idx is not None and (idx.stat().st_size != entry.idx_size or file_sha256(idx) != entry.idx_sha256):
        raise SourceFailed("downloaded pack index does not match the sha256 in the bundle list")


class TorrentSource:
    name = "torrent"

    def fetch(self, ctx: FetchContext) -> Fetched:
        from ..torrent import TorrentError, embedded, make

        opts: TorrentOptions = getattr(ctx, "torrent", None) or TorrentOptions()
        entry = ctx.mirrors.bundle_list.newest() if ctx.mirrors.bundle_list else None
        if entry is None:
            raise SourceFailed("origin advertises no bundle list, so a torrent's content cannot be verified")
        torrent, magnet = ctx.mirrors.torrent, ctx.mirrors.magnet
        if not torrent and not magnet:
            raise SourceFailed("origin advertises no torrent (refs/mirrors/bundle/torrent) and no magnet")
        use_daemon = opts.client == "transmission" or (opts.client == "auto" and opts.transmission)
        # The packages are imported (and in the action installed) only once a torrent is really there to fetch.
        ondemand.require("torrent", "the torrent method", ctx.deadline.remaining())
        if use_daemon:
            ondemand.require("transmission", "the torrent method (Transmission)", ctx.deadline.remaining())
        elif ondemand.enabled() and not embedded.available():
            ondemand.require("libtorrent", "the torrent method (embedded client)", ctx.deadline.remaining())
        meta = None
        if torrent:
            try:
                meta = make.parse(torrent)
            except TorrentError as exc:
                log.warn(f"refs/mirrors/bundle/torrent is unusable ({exc}); trying the magnet")
                torrent = None
        if not torrent and not magnet:
            raise SourceFailed("origin advertises no torrent (refs/mirrors/bundle/torrent) and no magnet")
        # The store's layout: <sha256>.bundle and its index <sha256>.idx (named after the bundle).
        bundle_file, idx_file = f"{entry.sha256}.bundle", f"{entry.sha256}.idx"
        if meta is not None:
            if bundle_file not in meta.files:
                raise SourceFailed(f"the torrent does not carry the bundle the list names ({entry.id}); it is stale")
            info_hash = meta.info_hash
        else:
            try:
                info_hash = make.magnet_info_hash(magnet or "")
            except TorrentError as exc:
                raise SourceFailed(str(exc)) from None
            log.info("no .torrent advertised: trying the magnet (metadata must come from peers)")

        if not use_daemon and not embedded.available():
            raise SourceFailed(f"no torrent client: {embedded.INSTALL_HINT}")
        # Refused before the swarm is asked for anything: a size above --max-bundle-size, or more than the disk holds.
        check_room(ctx.repo_dir / ".git" / "objects" / "pack", entry, ctx.max_bundle_size)
        # --torrent-timeout bounds the download, --timeout the whole attempt (download and apply);
        # --stall-timeout (no progress at all) gives up early.
        deadline = min(time.monotonic() + opts.time_limit, ctx.deadline.at)
        stall = ctx.deadline.stall if ctx.deadline.stall < opts.time_limit else None
        reporter = _Reporter(f"torrent {info_hash[:12]}")
        cleanup: Path | None = None
        try:
            if use_daemon:
                content = self._via_daemon(opts, torrent, magnet, info_hash, deadline, stall, reporter)
            else:
                pack_dir = ctx.repo_dir / ".git" / "objects" / "pack"
                save = cleanup = pack_dir / f"tmp_mirrorci_torrent_{secrets.token_hex(6)}"
                save.mkdir(parents=True, exist_ok=True)
                embedded.download(
                    save, torrent=torrent, magnet=None if torrent else magnet, deadline=deadline, stall=stall,
                    listen=opts.listen, web_seed_delay=opts.web_seed_delay,
                    on_status=lambda s: reporter(s.done, s.total, s.rate_down, s.peers),
                )
                content = save / make.TORRENT_NAME
            reporter.close("download complete")
            bundle_path = content / bundle_file
            idx_path = content / idx_file if (content / idx_file).is_file() else None
            for attempt in range(3 if use_daemon else 1):
                try:
                    verify_download(bundle_path, idx_path, entry)
                    break
                except SourceFailed:
                    if attempt == 2 or not use_daemon:
                        raise
                    time.sleep(1)  # the daemon may still be flushing its write cache
            local = {entry.uri: bundle_path}
            if idx_path is not None:
                local[entry.idx_uri] = idx_path
            elif entry.has_index:
                raise SourceFailed("the torrent carries no pack index; publish it again with a current mirrorci")

            def opener(uri: str) -> BinaryIO:
                if uri not in local:
                    raise SourceFailed(f"{uri} is not part of the torrent")
                return local[uri].open("rb")

            fetched = apply_entry(ctx, self.name, entry, opener)
            fetched.uri = f"magnet:?xt=urn:btih:{info_hash}"
            return fetched
        except TorrentError as exc:
            if ctx.deadline.expired():
                raise SourceFailed(f"the torrent download did not finish within --timeout {ctx.deadline.seconds:g} s "
                                   f"({exc})") from None
            raise SourceFailed(str(exc)) from None
        except SourceFailed:
            raise
        except Exception as exc:  # libtorrent's and transmission-rpc's own errors: a fallback all the same
            raise SourceFailed(f"torrent client failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        finally:
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)

    def _via_daemon(self, opts: TorrentOptions, torrent: bytes | None, magnet: str | None, info_hash: str,
                    deadline: float, stall: float | None, reporter: _Reporter) -> Path:
        from ..torrent import TorrentError
        from ..torrent.transmission import LABEL, LABEL_FETCHED, Daemon, parse_url

        rpc_timeout = max(1.0, min(30.0, opts.time_limit, deadline - time.monotonic()))
        daemon = Daemon(parse_url(opts.transmission or ""), timeout=rpc_timeout)
        state, added = daemon.add(torrent if torrent else (magnet or ""), info_hash, opts.download_dir,
                                  [LABEL, LABEL_FETCHED])
        log.info(f"Transmission at {daemon.address.describe()}: torrent {info_hash} "
                 f"{'added' if added else 'already there'} ({state.status})")
        try:
            state = daemon.wait(info_hash, deadline, stall=stall, on_poll=lambda s: reporter(
                s.size - s.left, s.size, s.rate_down, s.peers, f", {s.web_seeds} web seeds sending"))
        except TorrentError:
            if added:  # leave nothing half-done behind in someone's daemon
                try:
                    daemon.remove(info_hash, delete_data=True)
                except TorrentError:
                    pass
            raise
        where = state.download_dir
        if opts.local_dir:
            base = (opts.download_dir or daemon.download_dir()).rstrip("/")
            rel = where.rstrip("/")[len(base):].lstrip("/") if where.rstrip("/").startswith(base) else ""
            local = opts.local_dir / rel if rel else opts.local_dir
        else:
            local = Path(where)
        from ..torrent.make import TORRENT_NAME

        return local / TORRENT_NAME
