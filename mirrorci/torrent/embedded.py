"""An embedded BitTorrent client (the optional `libtorrent` package) for runners without a daemon.

It downloads from web seeds and peers (found through the torrent's trackers) and
uploads to other peers while it runs. DHT, local peer discovery, UPnP and NAT-PMP
stay off: a CI swarm is private and must not reach out anywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from . import TorrentError

INSTALL_HINT = "install the embedded client with `pip install mirrorci[libtorrent]` or pass --transmission URL"


def available() -> bool:
    try:
        import libtorrent  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Status:
    done: int
    total: int
    rate_down: int
    peers: int
    seeds: int
    state: str


def _session(listen: str) -> Any:
    import libtorrent as lt

    cat = lt.alert.category_t
    settings = {
        "listen_interfaces": listen,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        # Transmission peers here run without uTP: talk TCP to them.
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "user_agent": f"mirrorci/{__version__}",
        "alert_mask": int(cat.error_notification | cat.status_notification | cat.storage_notification),
        "stop_tracker_timeout": 1,
        "allow_multiple_connections_per_ip": True,
    }
    return lt.session(settings)  # type: ignore[call-overload]  # the bindings take a dict for a settings_pack


def _wait_alert(ses: Any, kind: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ses.wait_for_alert(int(max(0.05, deadline - time.monotonic()) * 1000))
        if any(type(a).__name__ == kind for a in ses.pop_alerts()):
            return True
    return False


def _params(save_dir: Path, torrent: bytes | None, magnet: str | None, web_seed_delay: float) -> tuple[Any, list[str]]:
    """What to add to the session, and the web seeds held back for `web_seed_delay` (only with trackers)."""
    import libtorrent as lt

    held_back: list[str] = []
    if torrent is not None:
        params = lt.add_torrent_params()
        try:
            info = lt.torrent_info(lt.bdecode(torrent))  # type: ignore[arg-type]  # bdecode's union holds the dict
        except RuntimeError as exc:
            raise TorrentError(f"libtorrent cannot read the torrent: {exc}") from None
        if web_seed_delay > 0 and info.trackers():
            held_back = [w["url"] for w in info.web_seeds()]
            info.set_web_seeds([])
        params.ti = info
    elif magnet:
        params = lt.parse_magnet_uri(magnet)
    else:
        raise TorrentError("neither a .torrent nor a magnet to download")
    params.save_path = str(save_dir)
    return params, held_back


def download(
    save_dir: Path, *, torrent: bytes | None = None, magnet: str | None = None, deadline: float,
    stall: float | None = None, on_status: Callable[[Status], None] | None = None, listen: str = "0.0.0.0:0",
    web_seed_delay: float = 0.0,
) -> str:
    """Download into `save_dir` until complete; returns the info hash. TorrentError on failure.

    With a magnet the metadata must come from peers first (a web seed cannot provide it).
    `web_seed_delay`: try peers alone for this long before the web seeds join in (less
    egress from the store when a fleet shares the download; only if the torrent has trackers).
    """
    params, held_back = _params(save_dir, torrent, magnet, web_seed_delay)
    ses = _session(listen)
    handle = ses.add_torrent(params)
    web_seeds_at = time.monotonic() + web_seed_delay
    last_done, last_move = -1, time.monotonic()
    try:
        while True:
            s = handle.status()
            now = time.monotonic()
            status = Status(int(s.total_wanted_done), int(s.total_wanted), int(s.download_payload_rate),
                            int(s.num_peers), int(s.num_seeds), str(s.state))
            if on_status:
                on_status(status)
            if s.errc.value():
                raise TorrentError(f"libtorrent: {s.errc.message()}")
            if s.has_metadata and s.is_seeding:
                break
            if held_back and now >= web_seeds_at:
                for url in held_back:
                    handle.add_url_seed(url)
                held_back = []
            if status.done != last_done or str(s.state).endswith("checking_files"):
                last_done, last_move = status.done, now
            if stall and now - last_move > stall:
                raise TorrentError(f"no progress for {stall:.0f}s ({status.peers} peers)")
            if now >= deadline:
                what = "no metadata from peers" if not s.has_metadata else f"{status.done} of {status.total} bytes"
                raise TorrentError(f"not complete before the time limit ({what}, {status.peers} peers)")
            ses.wait_for_alert(200)
            ses.pop_alerts()
        info_hash = str(handle.info_hash() if hasattr(handle, "info_hash") else handle.info_hashes().v1)
        # Seeding may be reported before the data reached the disk: flush, then release the files.
        handle.flush_cache()
        _wait_alert(ses, "cache_flushed_alert", 10)
        return info_hash
    finally:
        ses.remove_torrent(handle)
        _wait_alert(ses, "torrent_removed_alert", 5)
        ses.pause()
        del ses
