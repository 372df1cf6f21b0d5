"""A small client for a Transmission daemon (transmission-rpc): add, wait, keep N, remove.

The daemon URL may carry credentials (`http://user:pass@host:9091/transmission/rpc`);
MIRRORCI_TRANSMISSION_USER / MIRRORCI_TRANSMISSION_PASSWORD override them. The password
is registered with `log.mask`; messages name the daemon without any credentials.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import environment, log
from ..errors import UsageError
from . import TorrentError

ENV_USER = "MIRRORCI_TRANSMISSION_USER"
ENV_PASSWORD = "MIRRORCI_TRANSMISSION_PASSWORD"
LABEL = "mirrorci"
LABEL_FETCHED = "mirrorci-fetched"  # the daemon downloaded this data itself: safe to delete with the torrent
FIELDS = [
    "id", "hashString", "name", "status", "percentDone", "leftUntilDone", "sizeWhenDone", "totalSize", "error",
    "errorString", "rateDownload", "rateUpload", "peersConnected", "peersSendingToUs", "webseedsSendingToUs",
    "downloadDir", "addedDate", "labels", "comment", "haveValid", "recheckProgress", "uploadedEver", "downloadedEver",
]

logging.getLogger("transmission-rpc").setLevel(logging.CRITICAL)


@dataclass
class DaemonAddress:
    protocol: str
    host: str
    port: int
    path: str
    username: str | None = None
    password: str | None = None

    def describe(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}{self.path}"


def parse_url(url: str, env: Mapping[str, str] | None = None, flag: str = "--transmission") -> DaemonAddress:
    env = environment.current() if env is None else env
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{flag} must look like http://[user:pass@]host:9091/transmission/rpc")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 9091)
    except ValueError:
        raise UsageError(f"{flag}: bad port; give host:PORT") from None
    user = env.get(ENV_USER) or (unquote(parts.username) if parts.username else None)
    password = env.get(ENV_PASSWORD) or (unquote(parts.password) if parts.password else None)
    log.mask(password)  # the user name is not secret on its own, and masking a common word would garble logs
    path = parts.path if parts.path not in ("", "/") else "/transmission/rpc"
    return DaemonAddress(parts.scheme, parts.hostname, port, path, user, password)


@dataclass
class State:
    """One poll of a torrent in the daemon."""

    hash: str
    id: int
    status: str
    percent_done: float
    left: int
    size: int
    rate_down: int
    peers: int
    web_seeds: int
    download_dir: str
    error: str
    labels: list[str]
    added: float

    @property
    def done(self) -> bool:
        return self.percent_done >= 1 and self.left == 0

    @property
    def seeding(self) -> bool:
        return self.done and self.status in ("seeding", "seed pending")


def _state(t: Any) -> State:
    f = t.fields
    return State(
        hash=f["hashString"].lower(), id=f["id"], status=getattr(t.status, "value", str(t.status)),
        percent_done=float(f.get("percentDone", 0)), left=int(f.get("leftUntilDone", 0)),
        size=int(f.get("sizeWhenDone", 0)), rate_down=int(f.get("rateDownload", 0)),
        peers=int(f.get("peersSendingToUs", 0)), web_seeds=int(f.get("webseedsSendingToUs", 0)),
        download_dir=f.get("downloadDir", ""), error=f.get("errorString", "") if f.get("error") else "",
        labels=list(f.get("labels") or []), added=float(f.get("addedDate", 0)),
    )


class Daemon:
    def __init__(self, address: DaemonAddress, timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self._client: Any = None

    def _fail(self, what: str, exc: BaseException) -> TorrentError:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return TorrentError(log.redact(f"Transmission at {self.address.describe()}: {what}: {detail}"))

    @property
    def client(self) -> Any:
        if self._client is None:
            import transmission_rpc

            a = self.address
            try:
                self._client = transmission_rpc.Client(
                    protocol="https" if a.protocol == "https" else "http", host=a.host, port=a.port, path=a.path,
                    username=a.username,
                    password=a.password, timeout=self.timeout,
                )
            except transmission_rpc.TransmissionAuthError as exc:
                raise self._fail("authentication failed (check the user and password)", exc) from None
            except Exception as exc:  # connection refused, timeouts, bad answers
                raise self._fail("cannot reach the daemon", exc) from None
        return self._client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        client = self.client
        try:
            return fn(client, *args, **kwargs)
        except Exception as exc:
            raise self._fail(what, exc) from None

    def download_dir(self) -> str:
        return self._call("reading the session", lambda c: c.get_session().download_dir)

    def get(self, info_hash: str) -> State | None:
        found = self._call("reading torrents", lambda c: c.get_torrents(ids=[info_hash], arguments=FIELDS))
        return _state(found[0]) if found else None

    def list(self) -> list[State]:
        return [_state(t) for t in self._call("reading torrents", lambda c: c.get_torrents(arguments=FIELDS))]

    def add(
        self, data: bytes | str, info_hash: str, download_dir: str | None, labels: builtins.list[str],
    ) -> tuple[State, bool]:
        """Add (or find) the torrent (its .torrent bytes, or a magnet URI); returns its state and whether this
        call added it."""
        existing = self.get(info_hash)
        if existing is None:
            kwargs: dict[str, Any] = {"paused": False}
            if download_dir:
                kwargs["download_dir"] = download_dir
            self._call("adding the torrent", lambda c: c.add_torrent(data, **kwargs))
        elif existing.status == "stopped":
            self._call("starting the torrent", lambda c: c.start_torrent([info_hash]))
        if labels:
            try:
                current = existing.labels if existing else []
                self.client.change_torrent([info_hash], labels=sorted(set(current) | set(labels)))
            except Exception:  # labels need RPC 16 (Transmission 3.00); they are only a convenience
                pass
        state = self.get(info_hash)
        if state is None:
            raise TorrentError(f"Transmission at {self.address.describe()} did not keep the torrent {info_hash}")
        return state, existing is None

    def verify(self, info_hash: str) -> None:
        self._call("starting a verification", lambda c: c.verify_torrent([info_hash]))

    def remove(self, info_hash: str, delete_data: bool) -> None:
        self._call("removing a torrent", lambda c: c.remove_torrent([info_hash], delete_data=delete_data))

    def wait(
        self, info_hash: str, deadline: float, *, stall: float | None = None,
        on_poll: Callable[[State], None] | None = None, interval: float = 0.25,
    ) -> State:
        """Poll until the torrent is complete and seeding; TorrentError on error, stall or deadline."""
        last_left, last_move = None, time.monotonic()
        while True:
            state = self.get(info_hash)
            now = time.monotonic()
            if state is None:
                raise TorrentError(
                    f"the torrent {info_hash} disappeared from Transmission at {self.address.describe()}")
            if on_poll:
                on_poll(state)
            if state.error:
                raise TorrentError(f"Transmission reports an error for {info_hash}: {state.error}")
            if state.seeding:
                return state
            if state.left != last_left or state.status in ("check pending", "checking"):
                last_left, last_move = state.left, now
            if stall and now - last_move > stall:
                raise TorrentError(f"no progress for {stall:.0f}s ({state.status}, {state.peers} peers, "
                                   f"{state.web_seeds} web seeds sending)")
            if now >= deadline:
                raise TorrentError(f"not complete before the time limit ({100 * state.percent_done:.0f}% done, "
                                   f"status {state.status})")
            time.sleep(interval)

    def keep(self, name_label: str, keep: int, protect: str) -> builtins.list[str]:
        """Remove all but the `keep` newest torrents labelled `name_label` (never `protect`).

        Only torrents that carry mirrorci's label for this mirror are touched; data is
        deleted only where the daemon fetched it itself (LABEL_FETCHED).
        """
        ours = sorted((s for s in self.list() if name_label in s.labels), key=lambda s: (s.added, s.id), reverse=True)
        others = [s for s in ours if s.hash != protect]
        keep_set = {protect} | {s.hash for s in others[: max(keep - 1, 0)]}
        removed = []
        for s in ours:
            if s.hash not in keep_set:
                self.remove(s.hash, delete_data=LABEL_FETCHED in s.labels)
                removed.append(s.hash)
        return removed
