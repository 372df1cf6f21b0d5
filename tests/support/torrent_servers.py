"""Real BitTorrent servers for the tests: Debian's transmission-daemon and opentracker,
and network namespaces so that daemons can be peers (Transmission ignores peers at
127.0.0.0/8). Everything is started by the test, bound to 127.0.0.1 or to addresses
inside namespaces the test made itself, and torn down afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import ServerProcess

NET_PREFIX = "10.213"  # 10.213.X.0/24: only ever assigned inside namespaces/bridges made by NetLab


def have_binaries(*names: str) -> str | None:
    missing = [n for n in names if not shutil.which(n)]
    return f"{', '.join(missing)} not installed (scripts/bootstrap.sh installs it)" if missing else None


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs as root)"
    if not shutil.which("ip"):
        return "iproute2 ('ip') is not installed"
    probe = f"mcip{uuid.uuid4().hex[:6]}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"cannot create a network namespace: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _free_subnet() -> str:
    """A 10.213.X prefix no interface here uses yet (parallel test runs each get their own)."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    for _ in range(50):
        candidate = f"{NET_PREFIX}.{random.randrange(1, 255)}"
        if f" {candidate}." not in used:
            return candidate
    raise RuntimeError("no free 10.213.X.0/24 subnet for a test network")


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", "netns", "exec", netns, "ip", *args] if netns else ["ip", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")


class NetLab:
    """A bridge in the current namespace (address .1) and namespaces attached to it (.2, .3, ...).

    Hosts on the bridge reach each other at layer 2: nothing is routed, no sysctl changes.
    """

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.bridge = f"mcibr{self.tag}"
        self.subnet = _free_subnet()
        self.host_ip = f"{self.subnet}.1"
        self.namespaces: dict[str, str] = {}  # netns name -> address
        self.links: dict[str, str] = {}  # netns name -> the veth end on the bridge
        self._next = 2

    def __enter__(self) -> NetLab:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def add(self) -> tuple[str, str]:
        """A new namespace on the bridge; returns (netns name, its address)."""
        n = self._next
        self._next += 1
        ns, host_end, ns_end = f"mci{self.tag}n{n}", f"mciv{self.tag}{n}", f"mcie{self.tag}{n}"
        address = f"{self.subnet}.{n}"
        _ip("netns", "add", ns)
        self.namespaces[ns] = address
        self.links[ns] = host_end
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", ns)
        _ip("link", "set", host_end, "master", self.bridge)
        _ip("link", "set", host_end, "up")
        _ip("addr", "add", f"{address}/24", "dev", ns_end, netns=ns)
        _ip("link", "set", ns_end, "up", netns=ns)
        _ip("link", "set", "lo", "up", netns=ns)
        return ns, address

    def remove(self, ns: str) -> None:
        """Delete a namespace and its veth pair (a socket still lingering in the namespace would keep it)."""
        link = self.links.pop(ns, None)
        if link:
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self.namespaces.pop(ns, None)

    def close(self) -> None:
        for ns in list(self.namespaces):
            self.remove(ns)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=20)

    def __exit__(self, *exc: object) -> None:
        self.close()


def _prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


class TransmissionDaemon(ServerProcess):
    """`transmission-daemon -f` with its own config dir, ports and download dir."""

    def __init__(self, workdir: Path, *, host: str = "127.0.0.1", netns: str | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        self.workdir = Path(workdir)
        # SIGKILL at once: SIGTERM makes it announce "stopped" to trackers (3-5 s); nothing here needs that.
        super().__init__("transmission-daemon", log_path=self.workdir / "daemon.log", grace=0)
        self.config_dir = self.workdir / "config"
        self.download_dir = self.workdir / "downloads"
        self.host = host
        self.netns = netns
        self.username = username
        self.password = password
        self.rpc_port = free_port()
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.rpc_port}/transmission/rpc"

    @property
    def url_with_credentials(self) -> str:
        return f"http://{self.username}:{self.password}@{self.host}:{self.rpc_port}/transmission/rpc"

    def client(self):  # type: ignore[no-untyped-def]
        import transmission_rpc

        return transmission_rpc.Client(host=self.host, port=self.rpc_port, username=self.username,
                                       password=self.password, timeout=10)

    def __enter__(self) -> TransmissionDaemon:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.download_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "rpc-enabled": True, "rpc-bind-address": self.host, "rpc-port": self.rpc_port,
            "rpc-whitelist-enabled": True, "rpc-whitelist": f"127.0.0.1,{NET_PREFIX}.*.*",
            "rpc-host-whitelist-enabled": False,
            "rpc-authentication-required": bool(self.password),
            "rpc-username": self.username or "", "rpc-password": self.password or "",
            "bind-address-ipv4": self.host, "bind-address-ipv6": "::1",
            "peer-port": self.peer_port, "peer-port-random-on-start": False, "port-forwarding-enabled": False,
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
            "download-dir": str(self.download_dir), "incomplete-dir-enabled": False,
            "start-added-torrents": True, "message-level": 1, "encryption": 1,
            "ratio-limit-enabled": False, "idle-seeding-limit-enabled": False, "speed-limit-up-enabled": False,
            "speed-limit-down-enabled": False, "download-queue-enabled": False, "seed-queue-enabled": False,
        }
        (self.config_dir / "settings.json").write_text(json.dumps(settings, indent=1))
        self.start([*_prefix(self.netns), "transmission-daemon", "-f", "-g", str(self.config_dir)],
                   ready=lambda: self.client().get_session(), timeout=20)
        return self

    def remove_all(self) -> None:
        c = self.client()
        ids = [t.id for t in c.get_torrents(arguments=["id"])]
        if ids:
            c.remove_torrent(ids, delete_data=True)


class OpenTracker(ServerProcess):
    """Debian's opentracker (whitelist build): chroots into `workdir`, serves only whitelisted hashes."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        super().__init__("opentracker", log_path=self.workdir / "tracker.log")
        self.host = host
        self.port = free_port()
        self.hashes: set[str] = set()

    @property
    def announce_url(self) -> str:
        return f"http://{self.host}:{self.port}/announce"

    def __enter__(self) -> OpenTracker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # it drops to nobody after the chroot
        (self.workdir / "whitelist").write_text("")
        os.chmod(self.workdir / "whitelist", 0o644)
        self.start(["opentracker", "-i", self.host, "-p", str(self.port), "-P", str(self.port),
                    "-d", str(self.workdir), "-w", "whitelist"], port=self.port, host=self.host)
        return self

    def allow(self, info_hash: str) -> None:
        """Whitelist an info hash (opentracker rereads the list on SIGHUP)."""
        self.hashes.add(info_hash.lower())
        tmp = self.workdir / "whitelist.tmp"
        tmp.write_text("".join(f"{h}\n" for h in sorted(self.hashes)))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.workdir / "whitelist")
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
