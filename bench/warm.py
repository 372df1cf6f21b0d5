#!/usr/bin/env python3
"""Warm self-hosted runner, one publish behind: one pre-indexed increment vs git fetch.

    python bench/warm.py [--size gitlike] [--repo PATH] [--behind N] [--runs N] [--workdir DIR] [--json]

One run: rewind a bare copy of the generated repository by N commits ("release 1"),
publish it, warm a runner's `--cache-dir` with one checkout (and keep a plain
clone of release 1), restore origin to the original refs ("release 2") and
publish again to the same store (which adds one increment to the chain). Then time,
from a fresh copy of the warm cache each run: `mirrorci checkout --cache-dir`,
`git fetch` in a copy of the release-1 clone, a cold `mirrorci checkout`, and a
plain `git clone`; count the bytes origin and the store served. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402
import repogen  # noqa: E402
from repogen import git, git_env, log  # noqa: E402
from run import (  # noqa: E402
    BenchError, _ok, default_workdir, delete_tree, finish, run_main, settle, snapshot, start_daemon, verify,
)
from servers import CountingProxy, StoreServer  # noqa: E402

WARM = "mirrorci warm cache"
FETCH = "git fetch (warm clone)"
COLD = "mirrorci cold"
CLONE = "git clone"
METHODS = (WARM, FETCH, COLD, CLONE)
FETCH_REFSPECS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")


# ---------------------------------------------------------------------------- setup

def refs_of(repo: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags", cwd=repo)
    return dict(line.split(" ", 1) for line in out.splitlines() if line)  # type: ignore[misc]


def repack_clean(repo: Path) -> None:
    """One pack with bitmaps, unreachable objects dropped."""
    git("reflog", "expire", "--expire=now", "--all", cwd=repo)
    subprocess.run(["git", "repack", "-adbq"], cwd=repo, env=git_env(), check=True)
    git("prune", "--expire=now", cwd=repo)


def rewind(origin: Path, behind: int) -> dict:
    """Release 1: every ref as it was when `main` was N commits earlier.

    `main` becomes `main~N`; every other branch its newest first-parent commit no
    newer than that (the generator's clock only moves forward), or is deleted if it
    did not exist yet; tags whose commit is newer are deleted.
    """
    head = git("symbolic-ref", "HEAD", cwd=origin)
    old_main = git("rev-parse", head, cwd=origin)
    new_main = git("rev-parse", "--verify", f"{head}~{behind}", cwd=origin)
    cutoff = int(git("log", "-1", "--format=%ct", new_main, cwd=origin))
    lines, kept, moved, deleted = [], 0, 0, 0
    refs = git("for-each-ref", "--format=%(refname) %(objectname) %(objecttype)", "refs/heads", "refs/tags",
               cwd=origin).splitlines()
    for line in refs:
        ref, oid, kind = line.split()
        if ref == head:
            lines.append(f"update {ref} {new_main} {oid}")
            moved += 1
        elif ref.startswith("refs/heads/"):
            tip = git("rev-list", "-1", "--first-parent", f"--before={cutoff}", ref, cwd=origin)
            if not tip:
                lines.append(f"delete {ref} {oid}")
                deleted += 1
            elif tip != oid:
                lines.append(f"update {ref} {tip} {oid}")
                moved += 1
            else:
                kept += 1
        else:
            date = int(git("log", "-1", "--format=%ct", f"{oid}^{{commit}}", cwd=origin))
            if date > cutoff:
                lines.append(f"delete {ref} {oid}")
                deleted += 1
            else:
                kept += 1
    git("update-ref", "--stdin", cwd=origin, input=("\n".join(lines) + "\n").encode())
    return {"behind": behind, "main_release2": old_main, "main_release1": new_main,
            "refs_unchanged": kept, "refs_rewound": moved, "refs_deleted": deleted,
            "new_commits": int(git("rev-list", "--count", old_main, f"^{new_main}", cwd=origin))}


def publish(origin: Path, store: Path, url: str, cwd: Path) -> dict:
    t = time.monotonic()
    pub = subprocess.run([sys.executable, "-m", "mirrorci", "publish", "--repo", str(origin), "--no-push",
                          "--store", str(store), "--public-url", url, "--json"],
                         env=git_env(), cwd=cwd, capture_output=True, text=True)
    if pub.returncode != 0:
        raise BenchError(f"mirrorci publish failed (exit {pub.returncode}):\n{pub.stderr[-3000:]}")
    out = json.loads(pub.stdout)
    out["_seconds"] = round(time.monotonic() - t, 2)
    return out


def pack_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in (repo / "objects" / "pack").glob("*.pack"))


# ---------------------------------------------------------------------------- measuring

class Warm:
    def __init__(self, run_dir: Path, url: str, proxy: CountingProxy, store: StoreServer,
                 cache: Path, plain_warm: Path, incremental_size: int) -> None:
        self.run_dir, self.url, self.proxy, self.store = run_dir, url, proxy, store
        self.cache, self.plain_warm, self.incremental_size = cache, plain_warm, incremental_size
        self.env = git_env()
        self.seq = 0

    def mirrorci(self, dest: Path, rusage: Path, *extra: str) -> list[str]:
        return [sys.executable, str(HERE / "wrap_mirrorci.py"), str(rusage),
                "checkout", self.url, "--path", str(dest), "--json", *extra]

    def one(self, method: str, expected: dict[str, str] | None, expected_refs: dict[str, str],
            deep: bool) -> tuple[dict, dict | None]:
        self.seq += 1
        tag = f"{self.seq:02d}-{method.replace(' ', '_').replace('(', '').replace(')', '')}"
        clones = self.run_dir / "clones"
        dest = clones / tag
        rusage = self.run_dir / "logs" / f"{tag}.rusage.json"
        # untimed preparation: a warm cache / warm clone exactly one release behind
        if method == WARM:
            cache_copy = clones / f"{tag}.cache"
            subprocess.run(["cp", "-a", str(self.cache), str(cache_copy)], check=True)
            argv = self.mirrorci(dest, rusage, "--cache-dir", str(cache_copy))
        elif method == FETCH:
            subprocess.run(["cp", "-a", str(self.plain_warm), str(dest)], check=True)
            argv = ["git", "-C", str(dest), "fetch", "--quiet", "--prune", "origin", *FETCH_REFSPECS]
        elif method == COLD:
            argv = self.mirrorci(dest, rusage)
        else:
            argv = ["git", "clone", "--quiet", self.url, str(dest)]
        os.sync()
        self.proxy.wait_idle()
        o0, m0 = self.proxy.counter.snapshot()[0], self.store.counter.snapshot()[0]
        r = measure.run(argv, self.env, self.run_dir, self.run_dir / "logs" / tag)
        self.proxy.wait_idle()
        origin_bytes = self.proxy.counter.snapshot()[0] - o0
        store_bytes = self.store.counter.snapshot()[0] - m0
        if r.returncode != 0:
            raise BenchError(f"{method} failed (exit {r.returncode}): {' '.join(r.argv)}\n{r.stderr[-3000:]}")
        res: dict = {"method": method, "seconds": round(r.seconds, 3), "origin_bytes": origin_bytes,
                     "store_bytes": store_bytes, "maxrss_tree_mb": round(r.maxrss_kb / 1024, 1)}
        problems: list[str] = []
        if method in (WARM, COLD):
            out = json.loads(r.stdout)
            res["mirrorci"] = {k: out.get(k) for k in ("method", "mirror_uri", "apply_path", "final_fetch",
                                                        "final_fetch_reason", "bytes_from_mirror",
                                                        "bytes_from_origin", "cache", "timings", "fallbacks",
                                                        "warnings")}
            if method == WARM:
                # The increment is self-contained and pre-indexed: no index-pack on a warm runner.
                want = {"method": "http", "apply_path": "fast", "final_fetch": False,
                        "bytes_from_mirror": self.incremental_size}
            else:
                want = {"method": "http", "apply_path": "fast", "final_fetch": False}
            for key, value in want.items():
                if out.get(key) != value:
                    problems.append(f"{key}={out.get(key)!r}, expected {value!r}")
            if problems:
                res["unexpected"] = "; ".join(problems) + f" (fallbacks={out.get('fallbacks')}, cache={out.get('cache')!r})"
                log(f"WARNING: {method}: {res['unexpected']}")
        snap = None
        if method == FETCH:
            got = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/remotes/origin", "refs/tags",
                      cwd=dest).splitlines()
            got_refs = {ref.replace("refs/remotes/origin/", "refs/heads/", 1): oid
                        for ref, oid in (line.split(" ", 1) for line in got) if ref != "refs/remotes/origin/HEAD"}
            if got_refs != expected_refs:
                raise BenchError(f"{method}: fetched refs differ from release 2 (kept in {dest})")
        elif expected is None:
            snap = snapshot(dest)
            if not _ok(dest, "rev-list", "--objects", "--all", "--quiet"):
                raise BenchError(f"{method}: objects are missing in {dest}")
        else:
            bad = verify(method, dest, expected, deep)
            if bad:
                raise BenchError(f"{method} produced a clone that differs from a git clone of release 2 "
                                 f"(kept in {dest}):\n  " + "\n  ".join(bad))
        log(f"  {method:24} {r.seconds:7.2f} s  origin {origin_bytes:>11,} B  store {store_bytes:>11,} B"
            + (f"  !! {res['unexpected']}" if "unexpected" in res else ""))
        return res, snap


def summarize(runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    s = {"runs": len(runs), "median_seconds": round(statistics.median(secs), 3),
         "min_seconds": round(min(secs), 3), "max_seconds": round(max(secs), 3),
         "origin_bytes": int(statistics.median(r["origin_bytes"] for r in runs)),
         "store_bytes": int(statistics.median(r["store_bytes"] for r in runs)),
         "peak_tree_mb": max(r["maxrss_tree_mb"] for r in runs),
         "unexpected": [r["unexpected"] for r in runs if "unexpected" in r]}
    if "mirrorci" in runs[0]:
        mc = [r["mirrorci"] for r in runs]
        s["apply_path"] = sorted({m["apply_path"] or "none" for m in mc})
        s["final_fetch"] = sorted({bool(m["final_fetch"]) for m in mc})
        s["mirror_uri"] = sorted({(m["mirror_uri"] or "none").rsplit("/", 1)[-1] for m in mc})
        keys = sorted({k for m in mc for k in (m["timings"] or {})})
        s["timings_median"] = {k: round(statistics.median((m["timings"] or {}).get(k, 0.0) for m in mc), 3)
                               for k in keys}
    return s


# ---------------------------------------------------------------------------- report

def fmt_bytes(n: int) -> str:
    return f"{n:,} B" if n < 1e6 else f"{n / 1e6:,.1f} MB"


def table(report: dict) -> str:
    s, rel, lines = report["summary"], report["releases"], []
    add = lines.append
    add(f"warm runner, one release behind: {report['repository']}")
    add(f"  release 1 = main~{rel['behind']} ({rel['refs_rewound']} refs rewound, {rel['refs_deleted']} deleted); "
        f"release 2 adds {rel['new_commits']} commits on main")
    add(f"  full bundle {fmt_bytes(rel['full_bundle_bytes'])}, incremental {fmt_bytes(rel['incremental_bytes'])} "
        f"({100 * rel['incremental_bytes'] / rel['full_bundle_bytes']:.2f}% of full); {report['machine']}")
    add(f"  medians of {report['runs']}; each run from a fresh copy of the warm cache / warm clone")
    add("")
    add(f"{'method':24} {'median s':>8} {'min-max s':>13} {'origin bytes':>13} {'store bytes':>13}")
    for m in METHODS:
        x = s[m]
        add(f"{m:24} {x['median_seconds']:8.2f} {x['min_seconds']:6.2f}-{x['max_seconds']:<6.2f} "
            f"{fmt_bytes(x['origin_bytes']):>13} {fmt_bytes(x['store_bytes']):>13}")
    for m in (WARM, COLD):
        x = s[m]
        t = ", ".join(f"{k} {v:.2f}" for k, v in x["timings_median"].items() if k != "total")
        add(f"  {m}: {'/'.join(x['apply_path'])} path, final fetch {'/'.join(map(str, x['final_fetch']))}; {t}")
        for note in x["unexpected"][:1]:
            add(f"  !! {m}: {note}")
    add("")
    r = report["ratios"]
    add(f"  warm mirrorci / git fetch (time):        {r['warm_vs_fetch']:.2f}x")
    add(f"  warm mirrorci / cold mirrorci (time):    {r['warm_vs_cold']:.2f}x")
    add(f"  warm mirrorci / git clone (time):        {r['warm_vs_clone']:.2f}x")
    add(f"  store bytes, warm / full bundle:         {r['warm_store_vs_full']:.4f} "
        f"({fmt_bytes(s[WARM]['store_bytes'])} of {fmt_bytes(rel['full_bundle_bytes'])})")
    add(f"  origin bytes, warm mirrorci / git fetch: {fmt_bytes(s[WARM]['origin_bytes'])} / "
        f"{fmt_bytes(s[FETCH]['origin_bytes'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, help="use this existing repository instead of a generated one")
    p.add_argument("--size", choices=sorted(repogen.PRESETS), default="gitlike",
                   help="generated repository preset (default: gitlike)")
    p.add_argument("--behind", type=int, default=300, help="release 1 is main~N (default 300)")
    p.add_argument("--runs", type=int, default=3, help="runs per method; medians are reported (default 3)")
    p.add_argument("--workdir", type=Path, help="cache and scratch space (default: <tmp>/mirrorci-bench)")
    p.add_argument("--json", action="store_true",
                   help="print the results as one JSON object on stdout (the table goes to stderr)")
    p.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                   help="before measuring, wait until this long after the last bulk delete in the workdir "
                        "(default 0; see bench/README.md)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.behind < 1:
        p.error("--runs and --behind must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = (args.workdir or default_workdir()).absolute()
    run_dir = workdir / "warm"
    workdir.mkdir(parents=True, exist_ok=True)
    delete_tree(run_dir, workdir)
    for d in ("srv", "store", "clones", "logs"):
        (run_dir / d).mkdir(parents=True)

    if args.repo:
        source = args.repo.absolute()
        if not _ok(source, "rev-parse", "--git-dir"):
            raise BenchError(f"--repo {args.repo}: not a git repository")
        description = f"--repo {source.name}"
    else:
        source, _meta = repogen.ensure_repo(args.size, workdir / "repos")
        description = f"generated '{args.size}' repository ({source.name})"

    origin = run_dir / "srv" / "origin.git"
    log(f"making the bare origin from {source.name} (git clone --bare --no-local)")
    git("clone", "--quiet", "--bare", "--no-local", str(source), str(origin))
    git("remote", "remove", "origin", cwd=origin)
    release2 = refs_of(origin)
    log(f"release 1: rewinding origin by {args.behind} commits on main, repacking")
    releases = rewind(origin, args.behind)
    repack_clean(origin)
    release1 = refs_of(origin)

    store_dir, cache = run_dir / "store", run_dir / "cache"
    daemon, daemon_port = start_daemon(run_dir / "srv", run_dir / "logs")
    try:
        with CountingProxy(("127.0.0.1", daemon_port)) as proxy, StoreServer(store_dir) as store:
            url = f"git://127.0.0.1:{proxy.port}/origin.git"
            log(f"origin {url}; store {store.url}")
            log("release 1: mirrorci publish")
            pub1 = publish(origin, store_dir, store.url, run_dir)
            log("runner warm-up: mirrorci checkout --cache-dir (cold cache), and a plain git clone of release 1")
            job0 = run_dir / "clones" / "job0"
            warmup = subprocess.run([sys.executable, "-m", "mirrorci", "checkout", url, "--path", str(job0),
                                     "--cache-dir", str(cache), "--json"],
                                    env=git_env(), cwd=run_dir, capture_output=True, text=True)
            if warmup.returncode != 0:
                raise BenchError(f"warm-up checkout failed:\n{warmup.stderr[-3000:]}")
            job0_json = json.loads(warmup.stdout)
            if not (cache / "applied-bundles").read_text().split().count(pub1["bundle"]["sha256"]):
                raise BenchError("the warm-up checkout did not record release 1's bundle in the cache")
            plain_warm = run_dir / "plain-warm"
            git("clone", "--quiet", url, str(plain_warm))
            if git("rev-parse", "HEAD", cwd=job0) != release1[git("symbolic-ref", "HEAD", cwd=origin)]:
                raise BenchError("the warm-up checkout is not at release 1")
            shutil.rmtree(job0)  # the cache holds hard links to its packs; nothing else needs it

            log("release 2: origin fetches the original refs back, repacks; mirrorci publish to the same store")
            git("fetch", "--quiet", str(source), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
                cwd=origin)
            repack_clean(origin)
            if refs_of(origin) != release2:
                raise BenchError("origin's refs after the release-2 fetch differ from the original repository")
            pub2 = publish(origin, store_dir, store.url, run_dir)
            inc = pub2.get("increment")
            if pub2.get("published") != "increment" or not inc:
                raise BenchError(f"the second publish wrote no increment: {json.dumps(pub2)[:2000]}")
            if inc.get("parent_sha256") != pub1["bundle"]["sha256"]:
                log(f"WARNING: the increment's parent_sha256 {inc.get('parent_sha256')} is not release 1's bundle "
                    f"{pub1['bundle']['sha256']}")
            releases.update({
                "full_bundle_bytes": pub2["base"]["size"], "incremental_bytes": inc["size"],
                "release1_bundle_bytes": pub1["bundle"]["size"], "origin_pack_bytes": pack_bytes(origin),
                "incremental": inc, "publish_seconds": [pub1["_seconds"], pub2["_seconds"]],
                "release1_refs": len(release1), "release2_refs": len(release2),
                "warmup_checkout": {k: job0_json.get(k) for k in ("method", "apply_path", "final_fetch",
                                                                   "bytes_from_mirror", "bytes_from_origin")},
            })

            bench = Warm(run_dir, url, proxy, store, cache, plain_warm, inc["size"])
            settle(workdir, args.settle)
            log("reference: one untimed git clone of release 2")
            _, expected = bench.one(CLONE, None, release2, deep=True)
            results: dict[str, list[dict]] = {m: [] for m in METHODS}
            for i in range(args.runs):
                log(f"round {i + 1}/{args.runs}")
                for m in METHODS:  # interleaved
                    res, _ = bench.one(m, expected, release2, deep=(i == 0))
                    results[m].append(res)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()

    summary = {m: summarize(results[m]) for m in METHODS}
    med = {m: summary[m]["median_seconds"] for m in METHODS}
    report = {
        "repository": description, "releases": releases, "runs": args.runs,
        "machine": f"{os.cpu_count()} CPUs, {git('--version')}, Python {platform.python_version()}",
        "summary": summary,
        "ratios": {"warm_vs_fetch": round(med[WARM] / med[FETCH], 3), "warm_vs_cold": round(med[WARM] / med[COLD], 3),
                   "warm_vs_clone": round(med[WARM] / med[CLONE], 3),
                   "warm_store_vs_full": round(summary[WARM]["store_bytes"] / releases["full_bundle_bytes"], 5),
                   "incremental_vs_full": round(releases["incremental_bytes"] / releases["full_bundle_bytes"], 5)},
        "raw": results,
    }
    finish(report, table(report), workdir / "last-warm-result.json", args.json, run_dir / "clones", workdir)
    return 0


if __name__ == "__main__":
    run_main(main)
