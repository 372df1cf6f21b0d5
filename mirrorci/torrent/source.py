"""The torrent mirror method: the torrent from refs/mirrors/bundle/torrent (the magnet only as
a last resort), downloaded by a Transmission daemon (--transmission) or the embedded
libtorrent client, checked against the bundle list's sha256, then applied like any download.

Its options and settings are declared in options.py; publishing.py is the publish side.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .. import log, ondemand
from ..apply import check_room
from ..backend import Settings, setting
from ..bundle import file_sha256
from ..errors import SourceFailed
from ..mirrorlist import BundleEntry
from ..progress import Progress
from ..sources.base import FetchContext, Fetched, Source, apply_entry
from . import TorrentError, embedded, make
from .options import BACKEND, TorrentOptions
from .transmission import LABEL, LABEL_FETCHED, Daemon, parse_url


def verify_download(bundle: Path, idx: Path | None, entry: BundleEntry) -> None:
    """The finished files must be exactly what origin's bundle list names, whatever the torrent said."""
    if not bundle.is_file():
        raise SourceFailed(f"the torrent client reported completion, but {bundle} is missing")
    if bundle.stat().st_size != entry.size or file_sha256(bundle) != entry.sha256:
        raise SourceFailed("downloaded bundle does not match the sha256 in the bundle list (corrupt or stale torrent)")
    if idx is not None and (idx.stat().st_size != entry.idx_size or file_sha256(idx) != entry.idx_sha256):
        raise SourceFailed("downloaded pack index does not match the sha256 in the bundle list")


NO_TORRENT = "origin advertises no torrent (refs/mirrors/bundle/torrent) and no magnet"


class TorrentSource(Source):
    name = "torrent"
    backend = BACKEND
    default = "configured"

    def configured(self, settings: Settings) -> bool:
        return setting(settings, BACKEND.name, TorrentOptions).configured

    def fetch(self, ctx: FetchContext) -> Fetched:
        opts = setting(ctx.settings, BACKEND.name, TorrentOptions)
        entry = ctx.mirrors.bundle_list.newest() if ctx.mirrors.bundle_list else None
        if entry is None:
            raise SourceFailed("origin advertises no bundle list, so a torrent's content cannot be verified")
        if not ctx.mirrors.torrent and not ctx.mirrors.magnet:
            raise SourceFailed(NO_TORRENT)
        use_daemon = opts.client == "transmission" or (opts.client == "auto" and bool(opts.transmission))
        _require_packages(use_daemon, ctx.deadline.remaining())
        torrent, magnet, info_hash = _what_to_fetch(ctx.mirrors.torrent, ctx.mirrors.magnet, entry)
        if not use_daemon and not embedded.available():
            raise SourceFailed(f"no torrent client: {embedded.INSTALL_HINT}")
        # Refused before the swarm is asked for anything: a size above --max-bundle-size, or more than the disk holds.
        check_room(ctx.repo_dir / ".git" / "objects" / "pack", entry, ctx.max_bundle_size)
        try:
            with self._download(ctx, opts, use_daemon, torrent, magnet, info_hash) as content:
                files = _verified_files(content, entry, attempts=3 if use_daemon else 1)

                def opener(uri: str) -> BinaryIO:
                    if uri not in files:
                        raise SourceFailed(f"{uri} is not part of the torrent")
                    return files[uri].open("rb")

                fetched = apply_entry(ctx, self.name, entry, opener)
        except TorrentError as exc:
            if ctx.deadline.expired():
                raise SourceFailed(f"the torrent download did not finish within --timeout {ctx.deadline.seconds:g} s "
                                   f"({exc})") from None
            raise SourceFailed(str(exc)) from None
        except SourceFailed:
            raise
        except Exception as exc:  # libtorrent's and transmission-rpc's own errors: a fallback all the same
            raise SourceFailed(f"torrent client failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        fetched.uri = f"magnet:?xt=urn:btih:{info_hash}"
        return fetched

    @contextmanager
    def _download(self, ctx: FetchContext, opts: TorrentOptions, use_daemon: bool, torrent: bytes | None,
                  magnet: str | None, info_hash: str) -> Iterator[Path]:
        """The downloaded torrent's directory: the daemon's, or a scratch directory beside the packs that
        is removed once the caller is done with it."""
        # --torrent-timeout bounds the download, --timeout the whole attempt (download and apply);
        # --stall-timeout (no progress at all) gives up early.
        deadline = min(time.monotonic() + opts.time_limit, ctx.deadline.at)
        stall = ctx.deadline.stall if ctx.deadline.stall < opts.time_limit else None
        reporter = Progress(f"torrent {info_hash[:12]}")
        if use_daemon:
            content = self._via_daemon(opts, torrent, magnet, info_hash, deadline, stall, reporter)
            reporter.close("download complete")
            yield content
            return
        save = ctx.repo_dir / ".git" / "objects" / "pack" / f"tmp_mirrorci_torrent_{secrets.token_hex(6)}"
        try:
            save.mkdir(parents=True, exist_ok=True)
            embedded.download(
                save, torrent=torrent, magnet=None if torrent else magnet, deadline=deadline, stall=stall,
                listen=opts.listen, web_seed_delay=opts.web_seed_delay,
                on_status=lambda s: reporter.update(s.done, s.total, s.rate_down, s.peers),
            )
            reporter.close("download complete")
            yield save / make.TORRENT_NAME
        finally:
            shutil.rmtree(save, ignore_errors=True)

    def _via_daemon(self, opts: TorrentOptions, torrent: bytes | None, magnet: str | None, info_hash: str,
                    deadline: float, stall: float | None, reporter: Progress) -> Path:
        rpc_timeout = max(1.0, min(30.0, opts.time_limit, deadline - time.monotonic()))
        daemon = Daemon(parse_url(opts.transmission or ""), timeout=rpc_timeout)
        state, added = daemon.add(torrent if torrent else (magnet or ""), info_hash, opts.download_dir,
                                  [LABEL, LABEL_FETCHED])
        log.info(f"Transmission at {daemon.address.describe()}: torrent {info_hash} "
                 f"{'added' if added else 'already there'} ({state.status})")
        try:
            state = daemon.wait(info_hash, deadline, stall=stall, on_poll=lambda s: reporter.update(
                s.size - s.left, s.size, s.rate_down, s.peers, f"{s.web_seeds} web seeds sending"))
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
        return local / make.TORRENT_NAME


def _require_packages(use_daemon: bool, timeout: float) -> None:
    """The packages are imported (and in the action installed) only once a torrent is really there to fetch."""
    ondemand.require("torrent", "the torrent method", timeout)
    if use_daemon:
        ondemand.require("transmission", "the torrent method (Transmission)", timeout)
    elif ondemand.enabled() and not embedded.available():
        ondemand.require("libtorrent", "the torrent method (embedded client)", timeout)


def _what_to_fetch(
    torrent: bytes | None, magnet: str | None, entry: BundleEntry,
) -> tuple[bytes | None, str | None, str]:
    """The advertised .torrent (or, only without a usable one, the magnet) and its info hash.

    The store's layout: <sha256>.bundle and its index <sha256>.idx (named after the bundle);
    a torrent without the bundle the list names is stale.
    """
    meta = None
    if torrent:
        try:
            meta = make.parse(torrent)
        except TorrentError as exc:
            log.warn(f"refs/mirrors/bundle/torrent is unusable ({exc}); trying the magnet")
            torrent = None
    if not torrent and not magnet:
        raise SourceFailed(NO_TORRENT)
    if meta is not None:
        if f"{entry.sha256}.bundle" not in meta.files:
            raise SourceFailed(f"the torrent does not carry the bundle the list names ({entry.id}); it is stale")
        return torrent, magnet, meta.info_hash
    try:
        info_hash = make.magnet_info_hash(magnet or "")
    except TorrentError as exc:
        raise SourceFailed(str(exc)) from None
    log.info("no .torrent advertised: trying the magnet (metadata must come from peers)")
    return None, magnet, info_hash


def _verified_files(content: Path, entry: BundleEntry, attempts: int) -> dict[str, Path]:
    """The bundle (and its index) as the list names them: URI -> downloaded file, each checked by sha256."""
    bundle_path = content / f"{entry.sha256}.bundle"
    idx = content / f"{entry.sha256}.idx"
    idx_path = idx if idx.is_file() else None
    for attempt in range(attempts):
        try:
            verify_download(bundle_path, idx_path, entry)
            break
        except SourceFailed:
            if attempt == attempts - 1:
                raise
            time.sleep(1)  # the daemon may still be flushing its write cache
    files = {entry.uri: bundle_path}
    if idx_path is not None:
        files[entry.idx_uri] = idx_path
    elif entry.has_index:
        raise SourceFailed("the torrent carries no pack index; publish it again with a current mirrorci")
    return files
