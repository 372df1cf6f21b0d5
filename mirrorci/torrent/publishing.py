"""The torrent side of `mirrorci publish`.

The torrent carries the chain's base (bundle and index): the large download of a cold
clone. Increments are small and come over HTTP; a publish that adds an increment
advertises the base's torrent again, read back from the store (`existing`).

1. `prepare` (after a new base and its idx are uploaded, before the refs move): build the
   torrent with the bundle's public URL as web seed, upload it next to the bundle, and
   in shared-directory mode place the files where the daemon will look for them.
2. The caller pushes refs/mirrors/bundle/torrent and .../torrent-magnet with the other refs.
3. `seed` (after the push): hand the torrent to Transmission, wait until it seeds, then
   remove this mirror's torrents the store's retention would delete: those of bases that
   neither the new list nor the previous one names, added longer ago than the grace period.
   Failures there never undo the HTTP mirror.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import log
from ..errors import MirrorciError, UsageError
from ..fsutil import link_or_copy
from ..progress import Progress
from . import TorrentError
from .make import TORRENT_NAME, BuiltTorrent, build, stage, web_seed_base

SEED_MODES = ("required", "optional")
MAX_TORRENT_BYTES = 16 << 20


@dataclass
class TorrentPublishOptions:
    enabled: bool = False  # --torrent: build it even without trackers or a daemon
    trackers: list[str] = field(default_factory=list)
    transmission: str | None = None
    download_dir: str | None = None  # shared-directory mode: the directory as the daemon sees it
    local_dir: Path | None = None  # ... and as the publisher sees it (default: the same path)
    seed: str = "required"
    seed_timeout: float = 600.0
    keep: int | None = None  # also keep this many of the newest torrents, whatever the retention rule says

    @property
    def active(self) -> bool:
        return bool(self.enabled or self.trackers or self.transmission)

    def validate(self) -> None:
        for url in self.trackers:
            if urlsplit(url).scheme not in ("http", "https", "udp") or not urlsplit(url).hostname:
                raise UsageError(f"--tracker {url!r}: give an http://, https:// or udp:// announce URL")
        if self.seed not in SEED_MODES:
            raise UsageError(f"--seed must be one of {', '.join(SEED_MODES)}")
        if self.seed_timeout <= 0:
            raise UsageError("--seed-timeout must be a positive number of seconds")
        if self.keep is not None and self.keep < 1:
            raise UsageError("--keep must be 1 or more (the release just published is always kept)")
        needs_daemon = [f for f, v in (("--transmission-download-dir", self.download_dir),
                                        ("--transmission-local-dir", self.local_dir), ("--keep", self.keep)) if v]
        if needs_daemon and not self.transmission:
            raise UsageError(f"{', '.join(needs_daemon)} need --transmission URL")
        if self.local_dir and not self.download_dir:
            raise UsageError("--transmission-local-dir needs --transmission-download-dir (the daemon's view of it)")
        if self.transmission:
            from .transmission import parse_url

            parse_url(self.transmission)

    @property
    def shared_dir(self) -> Path | None:
        return self.local_dir or (Path(self.download_dir) if self.download_dir else None)


@dataclass
class Prepared:
    built: BuiltTorrent
    key: str
    url: str
    name: str
    placed: str | None = None  # error while placing files in the shared directory


def prepare(
    opts: TorrentPublishOptions, store: Any, *, name: str, sha256: str, bundle_path: Path, idx_path: Path,
    bundle_url: str, workdir: Path, torrent_url: str,
) -> Prepared:
    base = web_seed_base(bundle_url)
    web_seeds = [base] if base else []
    if not web_seeds:
        log.warn("the torrent has no web seed (the bundle has no http(s) URL; pass --public-url): "
                 "runners can only get it from peers")
    content = stage(workdir / "torrent", {f"{sha256}.bundle": bundle_path, f"{sha256}.idx": idx_path})
    t = time.monotonic()
    built = build(content, trackers=opts.trackers, web_seeds=web_seeds, comment=f"mirrorci:{name}")
    m = built.meta
    log.info(f"torrent {m.info_hash}: {m.pieces} pieces of {m.piece_size >> 20} MiB, built in "
             f"{time.monotonic() - t:.2f}s; web seeds {', '.join(m.web_seeds) or 'none'}")
    key = f"{name}/bundles/{sha256}.torrent"
    store.put_bytes(key, built.data, "application/x-bittorrent")
    prepared = Prepared(built, key, torrent_url, name)
    if opts.transmission and opts.shared_dir:
        try:
            _place(content, opts.shared_dir / TORRENT_NAME)
        except OSError as exc:
            prepared.placed = f"cannot place the bundle in {opts.shared_dir}: {exc.strerror or exc}"
    return prepared


def existing(store: Any, key: str, url: str, name: str) -> Prepared:
    """The base's torrent as an earlier publish uploaded it (its files are already placed and seeded)."""
    from .make import parse

    size = store.size_of(key)
    data = store.read_prefix(key, size) if size and size <= MAX_TORRENT_BYTES else None
    if not data:
        raise MirrorciError(f"the chain's base has no usable torrent at {key}; publish with --max-chain 0 once")
    meta = parse(data)
    return Prepared(BuiltTorrent(data, meta, Path()), key, url, name)


def _place(content: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src in content.iterdir():
        target = dest / src.name
        if target.is_file() and target.stat().st_size == src.stat().st_size:
            continue  # content-addressed: same name and size is the same file; the daemon verifies it
        link_or_copy(src, target, mode=0o644)


def summary(prepared: Prepared) -> dict[str, Any]:
    m = prepared.built.meta
    return {
        "info_hash": m.info_hash, "piece_size": m.piece_size, "pieces": m.pieces, "size": m.total_size,
        "web_seeds": m.web_seeds, "trackers": m.trackers, "magnet": m.magnet, "key": prepared.key,
        "url": prepared.url, "seeding": {"state": "not requested"},
    }


def seed(
    opts: TorrentPublishOptions, prepared: Prepared, referenced: Callable[[], set[str]] = set, grace: float = 86400.0,
) -> dict[str, Any]:
    """Hand the torrent to Transmission and wait for `seeding`. Returns the JSON `seeding` section.

    Then this mirror's other torrents go unless `referenced()` (the info hashes of the bases
    the previous lists name) holds them, they were added within `grace` seconds, or they are
    among the `--keep` newest: the rule the store's retention follows for the files.

    Raises MirrorciError when seeding failed and --seed is required; otherwise warns.
    """
    if not opts.transmission:
        return {"state": "not requested"}
    from .transmission import LABEL, LABEL_FETCHED, Daemon, parse_url

    address = parse_url(opts.transmission)
    mode = "shared-directory" if opts.download_dir else "web-seed"
    result: dict[str, Any] = {"daemon": address.describe(), "mode": mode, "state": "failed"}
    m = prepared.built.meta
    started = time.monotonic()
    try:
        with log.group(f"Seeding through Transmission at {address.describe()} ({mode})"):
            if prepared.placed:
                raise TorrentError(prepared.placed)
            if mode == "web-seed" and not m.web_seeds:
                raise TorrentError("the daemon has no data and the torrent no web seed: pass --public-url "
                                   "or --transmission-download-dir")
            daemon = Daemon(address)
            labels = [LABEL, f"{LABEL}:{prepared.name}"] + ([LABEL_FETCHED] if mode == "web-seed" else [])
            state, added = daemon.add(prepared.built.data, m.info_hash, opts.download_dir, labels)
            if not added and mode == "shared-directory":
                daemon.verify(m.info_hash)
            log.info(f"torrent {m.info_hash} {'added' if added else 'already in the daemon'}, {state.status}")
            progress = Progress("daemon")
            state = daemon.wait(m.info_hash, started + opts.seed_timeout, on_poll=lambda s: progress.update(
                s.size - s.left, s.size, s.rate_down, s.peers, f"{s.web_seeds} web seeds sending, {s.status}"))
            progress.close(state.status)
            result.update(state="seeding", status=state.status, download_dir=state.download_dir,
                          seconds=round(time.monotonic() - started, 3))
            log.info(f"Transmission is seeding {m.info_hash} from {state.download_dir}")
            keep = {m.info_hash.lower(), *referenced()}
            removed = retain(daemon, f"{LABEL}:{prepared.name}", keep, grace, opts.keep or 0)
            result["removed"] = removed
            if removed:
                log.info(f"removed {len(removed)} torrent(s) of bases no list names any more from the daemon")
    except TorrentError as exc:
        result["error"] = str(exc)
        message = f"refs/mirrors/* and the HTTP mirror are published, but seeding failed: {exc}"
        if opts.seed == "required":
            raise MirrorciError(message + "; fix the daemon and publish again, or pass --seed optional") from None
        log.warn(message)
    return result


def retain(daemon: Any, name_label: str, keep: set[str], grace: float, newest: int = 0,
           now: float | None = None) -> list[str]:
    """Remove the torrents labelled `name_label` that are not in `keep`, not among the `newest`
    added, and were added at least `grace` seconds ago. Other torrents are never touched; data is
    deleted only where the daemon fetched it itself (LABEL_FETCHED)."""
    from .transmission import LABEL_FETCHED

    now = time.time() if now is None else now
    ours = sorted((s for s in daemon.list() if name_label in s.labels), key=lambda s: (s.added, s.id), reverse=True)
    protected = {s.hash for s in ours[:newest]} | {h.lower() for h in keep}
    removed = []
    for s in ours:
        if s.hash not in protected and now - s.added >= grace:
            daemon.remove(s.hash, delete_data=LABEL_FETCHED in s.labels)
            removed.append(s.hash)
    return removed
