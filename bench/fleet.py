"""Fleet benchmark: one seeder, a web seed, N runners checking out the same release at once.

    sudo python bench/fleet.py [--runners 4] [--size-mb 64] [--web-seed-delay 0,10] [--json]

Everything runs on this machine: a bridge with network namespaces made here (one for
the seeding transmission-daemon, one per runner), origin served by `git daemon`, the
store by bench/servers.py's Range-capable HTTP server (the web seed), opentracker as
the tracker; all on 10.213.X.0/24 addresses inside the bridge, removed at the end.

It reports what the store served (the egress a user pays for) as a multiple of the
bundle size, and the wall time of N `mirrorci checkout --prefer torrent,http` runs
(embedded libtorrent client) against N plain `--prefer http` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import servers  # noqa: E402  (bench/servers.py)

from tests.support.ports import free_port, wait_for_port  # noqa: E402
from tests.support.repos import git, make_sample_repo  # noqa: E402
from tests.support.torrent_servers import (  # noqa: E402
    NetLab,
    OpenTracker,
    TransmissionDaemon,
    have_binaries,
    netns_unavailable,
)


class BridgeStore(servers.StoreServer):
    """bench/servers.py's store server, bound to the bridge so runners in namespaces reach it."""

    def __init__(self, root: Path, host: str) -> None:
        httpd = servers._StoreHTTPServer.__new__(servers._StoreHTTPServer)
        httpd.root = root.resolve()
        httpd.counter = servers.Counter()
        ThreadingHTTPServer.__init__(httpd, (host, 0), servers._StoreHandler)
        self.httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.counter = httpd.counter
        import threading

        self._thread = threading.Thread(target=httpd.serve_forever, name="store-http", daemon=True)


def mirrorci(*args: str, netns: str | None = None) -> subprocess.Popen[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.Popen([*prefix, sys.executable, "-m", "mirrorci", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def run_fleet(lab: NetLab, store: BridgeStore, origin_url: str, work: Path, runners: int, prefer: str,
              extra: list[str]) -> dict:
    namespaces = [lab.add()[0] for _ in range(runners)]  # fresh addresses per round
    before = store.counter.snapshot()[0]
    started = time.monotonic()
    procs = [mirrorci("checkout", origin_url, "--path", str(work / f"{prefer}-{i}-{time.time_ns()}"), "--json",
                      "--prefer", prefer, *extra, netns=ns) for i, ns in enumerate(namespaces)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise SystemExit(f"runner failed:\n{err[-2000:]}")
        results.append(json.loads(out))
    wall = time.monotonic() - started
    for ns in namespaces:
        lab.remove(ns)
    return {
        "wall_s": round(wall, 2), "store_bytes": store.counter.snapshot()[0] - before,
        "methods": sorted(r["method"] for r in results),
        "runner_mirror_s": sorted(round(r["timings"].get("mirror", 0), 2) for r in results),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runners", type=int, default=4)
    ap.add_argument("--size-mb", type=int, default=64, help="size of the incompressible file in the sample repo")
    ap.add_argument("--web-seed-delay", default="0,10", help="comma-separated --web-seed-delay values to try")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    why = have_binaries("transmission-daemon", "opentracker") or netns_unavailable()
    if why:
        print(f"fleet benchmark skipped: {why}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="mirrorci-fleet-"))
    report: dict = {"runners": args.runners, "rounds": {}}
    daemon_proc = None
    try:
        with NetLab() as lab:
            seed_ns, seed_addr = lab.add()
            served = work / "served"
            served.mkdir()
            sample = make_sample_repo(work / "sample", big_file_mb=args.size_mb)
            git(work, "clone", "-q", "--bare", str(sample), str(served / "origin.git"))
            port = free_port()
            daemon_proc = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", f"--listen={lab.host_ip}", f"--port={port}",
                 f"--base-path={served}", "--export-all", "--enable=receive-pack", str(served)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_for_port(lab.host_ip, port)
            origin_url = f"git://{lab.host_ip}:{port}/origin.git"
            (work / "store").mkdir()
            with BridgeStore(work / "store", lab.host_ip) as store, \
                    OpenTracker(work / "tracker", host=lab.host_ip) as tracker, \
                    TransmissionDaemon(work / "seeder", host=seed_addr, netns=seed_ns) as seeder:
                pub = mirrorci("publish", "--repo", str(served / "origin.git"), "--remote", origin_url,
                               "--store", str(work / "store"), "--public-url", store.url, "--tracker",
                               tracker.announce_url, "--transmission", seeder.url, "--transmission-download-dir",
                               str(seeder.download_dir), "--json")
                out, err = pub.communicate(timeout=600)
                if pub.returncode != 0:
                    raise SystemExit(f"publish failed:\n{err[-2000:]}")
                published = json.loads(out)
                size = published["bundle"]["size"] + published["index"]["size"]
                info_hash = published["torrent"]["info_hash"]
                tracker.allow(info_hash)
                seeder.client().reannounce_torrent([info_hash])
                report.update(bundle_bytes=size, info_hash=info_hash, piece_size=published["torrent"]["piece_size"])

                rounds = {"http": (["--prefer", "http"], "http")}
                for delay in [float(d) for d in args.web_seed_delay.split(",") if d.strip()]:
                    rounds[f"torrent, web seed delay {delay:g}s"] = (
                        ["--torrent-timeout", "300", "--web-seed-delay", str(delay)], "torrent,http")
                for name, (extra, prefer) in rounds.items():
                    r = run_fleet(lab, store, origin_url, work / "runs", args.runners, prefer, extra)
                    r["egress_x_bundle"] = round(r["store_bytes"] / size, 2)
                    report["rounds"][name] = r
    finally:
        if daemon_proc and daemon_proc.poll() is None:
            daemon_proc.terminate()
            daemon_proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.runners} runners, bundle+idx {report['bundle_bytes'] / 1e6:.1f} MB, "
              f"piece size {report['piece_size'] >> 20} MiB")
        print(f"{'scenario':34} {'wall s':>7} {'store egress':>13}  methods")
        base = report["rounds"]["http"]["wall_s"]
        for name, r in report["rounds"].items():
            print(f"{name:34} {r['wall_s']:7.2f} {r['egress_x_bundle']:11.2f} x  {','.join(r['methods'])}"
                  f"  (wall {r['wall_s'] / base:.1f}x http)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
