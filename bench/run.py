#!/usr/bin/env python3
"""Benchmark mirrorci checkout against git clone and git clone --bundle-uri.

    python bench/run.py [--size small|large|gitlike] [--repo PATH] [--runs N] [--workdir DIR] [--json]

One run: get a large repository (generated and cached, or --repo), make a bare
origin served by `git daemon` behind a byte-counting proxy, publish its mirror to
a store directory served over HTTP, then time fresh clones with each method,
check every clone against the plain `git clone`, and print medians, ratios,
origin bytes and peak memory next to the targets. See bench/README.md.
Not part of the test suite; needs git and the installed mirrorci package only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402
import repogen  # noqa: E402
from repogen import git, git_env, log  # noqa: E402
from servers import CountingProxy, StoreServer, free_port, wait_for_port  # noqa: E402

TARGETS = {
    "fast_vs_clone": 0.15,       # mirrorci fast path <= 0.15x git clone
    "streaming_vs_bundle": 1.0,  # mirrorci --verify full <= 1.0x git clone --bundle-uri
    "origin_pct": 1.0,           # origin serves < 1% of the pack bytes when the mirror is current
    "peak_mb": 150.0,            # peak RSS of the checkout's process tree < 150 MB
}

GIT_CLONE = "git clone"
BUNDLE_URI = "git clone --bundle-uri"
FAST = "mirrorci fast"
STREAMING = "mirrorci streaming"
METHODS = (GIT_CLONE, BUNDLE_URI, FAST, STREAMING)
EXPECTED_PATH = {FAST: "fast", STREAMING: "streaming"}


SETTLE_SECONDS = 90
CLEANUP_STAMP = ".last-bulk-delete"


class BenchError(Exception):
    pass


def delete_tree(path: Path, workdir: Path) -> None:
    """Delete a directory tree and remember when, for `settle`."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        os.sync()
        (workdir / CLEANUP_STAMP).write_text(f"{time.time()}\n")


def settle(workdir: Path, seconds: float) -> None:
    """Wait until `seconds` have passed since the last bulk delete in this workdir.

    On ext4 without a journal (common on CI VMs), creating files within a minute or
    so of deleting many is several times slower (the allocator skips recently
    deleted inodes), which would slow whichever clone comes first. Clones are
    therefore kept until the end of a run and deleted afterwards, and a run that
    starts right after another waits here first.
    """
    try:
        last = float((workdir / CLEANUP_STAMP).read_text())
    except (OSError, ValueError):
        return
    wait = last + seconds - time.time()
    if wait > 0:
        log(f"waiting {wait:.0f} s for the filesystem to settle after the last bulk delete (--settle)")
        time.sleep(wait)


# ---------------------------------------------------------------------------- setup

def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "mirrorci-bench"


def fresh_run_dir(workdir: Path | None, name: str) -> tuple[Path, Path]:
    """The workdir (--workdir or the default), and an emptied <workdir>/<name> holding srv, store, clones, logs."""
    workdir = (workdir or default_workdir()).absolute()
    run_dir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    delete_tree(run_dir, workdir)
    for d in ("srv", "store", "clones", "logs"):
        (run_dir / d).mkdir(parents=True)
    return workdir, run_dir


def source_repo(repo: Path | None, size: str, workdir: Path) -> tuple[Path, str, dict]:
    """--repo, or the generated preset (cached in <workdir>/repos): its path, a description, its metadata."""
    if repo:
        source = repo.absolute()
        if not _ok(source, "rev-parse", "--git-dir"):
            raise BenchError(f"--repo {repo}: not a git repository")
        return source, f"--repo {source.name}", {}
    source, meta = repogen.ensure_repo(size, workdir / "repos")
    return source, f"generated '{size}' repository ({source.name})", meta


def make_origin(source: Path, dest: Path, generated: bool) -> None:
    """A bare origin with bitmaps. A generated repo is already repacked: hardlink it."""
    shutil.rmtree(dest, ignore_errors=True)
    git("clone", "--quiet", "--bare", "--local" if generated else "--no-local", str(source), str(dest))
    git("remote", "remove", "origin", cwd=dest)
    git("symbolic-ref", "HEAD", git("symbolic-ref", "HEAD", cwd=dest), cwd=dest)
    packs = list((dest / "objects" / "pack").glob("pack-*.pack"))
    if len(packs) != 1 or not packs[0].with_suffix(".bitmap").exists():
        log("repacking origin with bitmaps (git repack -adb)")
        subprocess.run(["git", "repack", "-adbq"], cwd=dest, env=git_env(), check=True)


def start_daemon(base: Path, logs: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    errlog = (logs / "git-daemon.log").open("wb")
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
         f"--port={port}", "--informative-errors", str(base)],
        stdout=errlog, stderr=errlog, stdin=subprocess.DEVNULL, env=git_env())
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return proc, port


def stop_daemon(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def advance_origin(origin: Path) -> str:
    """Origin moves on after the publish: one commit on its default branch touching 3 files."""
    head = git("symbolic-ref", "HEAD", cwd=origin)
    paths = git("ls-tree", "-r", "--name-only", head, cwd=origin).splitlines()[:3]
    stamp = int(time.time())
    message = b"Change after the publish\n"
    stream = (f"commit {head}\ncommitter Bench <bench@example.invalid> {stamp} +0000\n"
              f"data {len(message)}\n").encode() + message + f"from {head}^0\n".encode()
    for path in paths:
        body = git("cat-file", "blob", f"{head}:{path}", cwd=origin).encode() + b"\n# changed after the publish\n"
        stream += f"M 100644 inline {path}\ndata {len(body)}\n".encode() + body + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=origin, input=stream + b"done\n",
                   env=git_env(), check=True)
    return git("rev-parse", head, cwd=origin)


# ---------------------------------------------------------------------------- checks

def snapshot(repo: Path) -> dict[str, str]:
    """What must be identical to the plain git clone (refs/bundles/* left by --bundle-uri aside)."""
    refs = git("for-each-ref", "--format=%(refname) %(objectname) %(symref)", cwd=repo).splitlines()
    refs = [r for r in refs if not r.startswith("refs/bundles/")]
    index = subprocess.run(["git", "ls-files", "-s"], cwd=repo, env=git_env(), capture_output=True, check=True).stdout
    return {
        "refs": "\n".join(refs),
        "head": git("rev-parse", "HEAD", cwd=repo),
        "head_ref": git("symbolic-ref", "-q", "HEAD", cwd=repo) if _ok(repo, "symbolic-ref", "-q", "HEAD") else "",
        "index_sha256": hashlib.sha256(index).hexdigest(),
        "config": "\n".join(sorted(git("config", "--local", "--get-regexp", r"^(remote|branch)\.", cwd=repo)
                                   .splitlines())),
    }


def _ok(repo: Path, *args: str) -> bool:
    return subprocess.run(["git", *args], cwd=repo, env=git_env(), capture_output=True).returncode == 0


def verify(method: str, repo: Path, expected: dict[str, str], deep: bool) -> list[str]:
    """Fatal differences; config differences are returned as warnings by the caller."""
    got = snapshot(repo)
    problems = [f"{key} differs from git clone" for key in ("refs", "head", "head_ref", "index_sha256")
                if got[key] != expected[key]]
    if got["refs"] != expected["refs"]:
        a, b = set(expected["refs"].splitlines()), set(got["refs"].splitlines())
        problems.append(f"  missing: {sorted(a - b)[:5]}  extra: {sorted(b - a)[:5]}")
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=repo)
    if dirty:
        problems.append(f"work tree differs from HEAD: {dirty.splitlines()[:3]}")
    if deep and not _ok(repo, "rev-list", "--objects", "--all", "--quiet"):
        problems.append("git rev-list --objects --all fails: objects are missing")
    if got["config"] != expected["config"]:
        log(f"warning: {method}: remote/branch config differs from git clone:\n"
            f"    git clone: {expected['config']!r}\n    {method}: {got['config']!r}")
    return problems


# ---------------------------------------------------------------------------- measuring

def counted_run(method: str, argv: list[str], run_dir: Path, tag: str, proxy: CountingProxy,
                store: StoreServer) -> tuple[measure.Measured, int, int]:
    """Run one measured command (logs under run_dir/logs/tag): its result, and the bytes origin
    (through the proxy) and the store served meanwhile. A failed command stops the benchmark."""
    proxy.wait_idle()
    o0, m0 = proxy.counter.snapshot()[0], store.counter.snapshot()[0]
    r = measure.run(argv, git_env(), run_dir, run_dir / "logs" / tag)
    proxy.wait_idle()
    if r.returncode != 0:
        raise BenchError(f"{method} failed (exit {r.returncode}): {' '.join(r.argv)}\n{r.stderr[-3000:]}")
    return r, proxy.counter.snapshot()[0] - o0, store.counter.snapshot()[0] - m0


class Bench:
    def __init__(self, run_dir: Path, url: str, list_url: str, proxy: CountingProxy, store: StoreServer) -> None:
        self.run_dir = run_dir
        self.url = url
        self.list_url = list_url
        self.proxy = proxy
        self.store = store
        self.env = git_env()
        self.seq = 0

    def argv(self, method: str, dest: Path, rusage: Path) -> list[str]:
        if method == GIT_CLONE:
            return ["git", "clone", "--quiet", self.url, str(dest)]
        if method == BUNDLE_URI:
            return ["git", "clone", "--quiet", f"--bundle-uri={self.list_url}", self.url, str(dest)]
        extra = ["--verify", "full"] if method == STREAMING else []
        return [sys.executable, str(HERE / "wrap_mirrorci.py"), str(rusage),
                "checkout", self.url, "--path", str(dest), "--json", *extra]

    def one(self, method: str, scenario: str, expected: dict[str, str] | None, deep: bool) -> tuple[dict, dict | None]:
        """One fresh clone: timed, counted, verified (kept until the end of the run).

        With `expected` None, returns the clone's snapshot for the others to match.
        """
        self.seq += 1
        tag = f"{self.seq:02d}-{scenario}-{method.replace(' ', '_').replace('-', '')}"
        dest = self.run_dir / "clones" / tag
        rusage = self.run_dir / "logs" / f"{tag}.rusage.json"
        r, origin_bytes, mirror_bytes = counted_run(method, self.argv(method, dest, rusage), self.run_dir, tag,
                                                    self.proxy, self.store)
        git_name, git_kb, git_anon = r.peaks.largest("git")
        res: dict = {
            "method": method, "scenario": scenario, "seconds": round(r.seconds, 3),
            "origin_bytes": origin_bytes, "mirror_bytes": mirror_bytes,
            "maxrss_tree_mb": round(r.maxrss_kb / 1024, 1),
            "largest_git": git_name, "largest_git_mb": round(git_kb / 1024, 1),
            "largest_git_anon_mb": round(git_anon / 1024, 1),
            "tree_rss_sum_mb": round(r.peaks.tree_rss_kb / 1024, 1),
            "processes": r.peaks.by_label(),
        }
        if method in (FAST, STREAMING):
            out = json.loads(r.stdout)
            res["mirrorci"] = {k: out.get(k) for k in ("method", "apply_path", "final_fetch", "final_fetch_reason",
                                                        "bytes_from_mirror", "bytes_from_origin", "timings",
                                                        "fallbacks", "warnings", "verified")}
            ru = json.loads(rusage.read_text())
            res["python_mb"] = round(ru["self_maxrss_kb"] / 1024, 1)
            res["git_children_maxrss_mb"] = round(ru["children_maxrss_kb"] / 1024, 1)
            if out.get("apply_path") != EXPECTED_PATH[method]:
                res["unexpected_path"] = (f"expected the {EXPECTED_PATH[method]} path, got apply_path="
                                          f"{out.get('apply_path')!r} method={out.get('method')!r} "
                                          f"fallbacks={out.get('fallbacks')}")
                log(f"WARNING: {method}: {res['unexpected_path']}")
        snap = None
        if expected is None:
            snap = snapshot(dest)
            if deep and not _ok(dest, "rev-list", "--objects", "--all", "--quiet"):
                raise BenchError(f"{method}: objects are missing in {dest}")
        else:
            problems = verify(method, dest, expected, deep)
            if problems:
                raise BenchError(f"{method} produced a clone that differs from git clone "
                                 f"(kept in {dest}):\n  " + "\n  ".join(problems))
        os.sync()  # untimed: the next clone must not pay for this one's writeback
        log(f"  {scenario:8} {method:24} {r.seconds:7.2f} s  origin {origin_bytes:>11,} B  "
            f"mirror {mirror_bytes:>11,} B  peak {res['maxrss_tree_mb']:.0f} MB")
        return res, snap

    def rounds(self, scenario: str, runs: int, expected: dict[str, str] | None) -> dict[str, list[dict]]:
        results: dict[str, list[dict]] = {m: [] for m in METHODS}
        for i in range(runs):
            log(f"{scenario}: round {i + 1}/{runs}")
            for method in METHODS:  # interleaved, so drift hits every method alike
                res, snap = self.one(method, scenario, expected, deep=(i == 0))
                expected = expected or snap
                results[method].append(res)
        return results


def summarize(runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    biggest = max(runs, key=lambda r: r["largest_git_mb"])
    s = {
        "runs": len(runs), "median_seconds": round(statistics.median(secs), 3),
        "min_seconds": round(min(secs), 3), "max_seconds": round(max(secs), 3),
        "origin_bytes": int(statistics.median(r["origin_bytes"] for r in runs)),
        "mirror_bytes": int(statistics.median(r["mirror_bytes"] for r in runs)),
        "peak_tree_mb": max(r["maxrss_tree_mb"] for r in runs),
        "largest_git": biggest["largest_git"], "largest_git_mb": biggest["largest_git_mb"],
        "largest_git_anon_mb": biggest["largest_git_anon_mb"],
        "tree_rss_sum_mb": max(r["tree_rss_sum_mb"] for r in runs),
        "processes": {},
    }
    for r in runs:
        for name, p in r["processes"].items():
            cur = s["processes"].setdefault(name, {"peak_mb": 0.0, "anon_peak_mb": 0.0})
            cur["peak_mb"] = max(cur["peak_mb"], p["peak_mb"])
            cur["anon_peak_mb"] = max(cur["anon_peak_mb"], p["anon_peak_mb"])
    if "mirrorci" in runs[0]:
        s["python_mb"] = max(r["python_mb"] for r in runs)
        s["apply_path"] = sorted({r["mirrorci"]["apply_path"] or "none" for r in runs})
        s["final_fetch"] = sorted({bool(r["mirrorci"]["final_fetch"]) for r in runs})
        s["bytes_from_origin_reported"] = int(statistics.median(r["mirrorci"]["bytes_from_origin"] for r in runs))
        keys = sorted({k for r in runs for k in (r["mirrorci"]["timings"] or {})})
        s["timings_median"] = {k: round(statistics.median(r["mirrorci"]["timings"].get(k, 0.0) for r in runs), 3)
                               for k in keys}
        s["unexpected_path"] = [r["unexpected_path"] for r in runs if "unexpected_path" in r]
        verified = [r["mirrorci"].get("verified") for r in runs if r["mirrorci"].get("verified")]
        if verified:
            # Verification runs beside the work tree's checkout: its own time, and what it added to the wall time.
            s["verification"] = {
                "scope": verified[0]["scope"], "objects": verified[0]["objects"],
                "median_seconds": round(statistics.median(v["seconds"] for v in verified), 3),
                "median_added_seconds": s["timings_median"].get("verify", 0.0),
            }
    return s


# ---------------------------------------------------------------------------- report

def fmt_mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def fmt_bytes(n: int) -> str:
    return f"{n:,} B" if n < 1e6 else f"{n / 1e6:,.1f} MB"


def evaluate(s: dict[str, dict], pack_bytes: int) -> list[dict]:
    clone, bundle, fast, stream = (s[m]["median_seconds"] for m in METHODS)
    checks = [
        ("fast path / git clone", FAST, fast / clone, TARGETS["fast_vs_clone"], "x"),
        ("fast path / git clone --bundle-uri", FAST, fast / bundle, None, "x"),
        ("streaming / git clone --bundle-uri", STREAMING, stream / bundle, TARGETS["streaming_vs_bundle"], "x"),
        ("origin bytes, fast path, % of pack", FAST, 100 * s[FAST]["origin_bytes"] / pack_bytes,
         TARGETS["origin_pct"], "%"),
        ("origin bytes, streaming, % of pack", STREAMING, 100 * s[STREAMING]["origin_bytes"] / pack_bytes,
         TARGETS["origin_pct"], "%"),
        ("peak RSS, fast path (process tree)", FAST, s[FAST]["peak_tree_mb"], TARGETS["peak_mb"], "MB"),
        ("peak RSS, streaming (process tree)", STREAMING, s[STREAMING]["peak_tree_mb"], TARGETS["peak_mb"], "MB"),
    ]
    out = []
    for name, method, value, target, unit in checks:
        ok = None
        if target is not None:
            ok = value <= target if unit == "x" else value < target
        note = ""
        if s[method]["unexpected_path"]:
            ok, note = False if ok is not None else None, "mirrorci did not take the expected path"
        elif unit == "MB":
            x = s[method]
            note = (f"python {x['python_mb']:.0f} MB; largest git child: {x['largest_git']} "
                    f"{x['largest_git_mb']:.0f} MB, {x['largest_git_anon_mb']:.0f} MB of it anonymous")
        out.append({"check": name, "value": round(value, 4), "target": target, "unit": unit,
                    "result": None if ok is None else ("PASS" if ok else "MISS"), "note": note})
    return out


def _target_text(c: dict) -> tuple[str, str]:
    unit, v, t = c["unit"], c["value"], c["target"]
    if unit == "x":
        return f"{v:.3f}x", f"<= {t:.2f}x" if t is not None else ""
    if unit == "%":
        return f"{v:.3f}%", f"< {t:g}%"
    return f"{v:.0f} MB", f"< {t:.0f} MB"


def table(report: dict) -> str:
    repo, s, lines = report["repository"], report["summary"], []
    st = repo["stats"]
    add = lines.append
    add(f"mirrorci benchmark: {repo['description']}")
    add(f"  pack {fmt_mb(st['pack_bytes'])}, {st['objects']:,} objects ({st['commits']:,} commits, "
        f"{st['trees']:,} trees, {st['blobs']:,} blobs, {st['tags']} tags), {repo['refs']} refs; "
        f"{st['deltas']:,} deltas, chain depth max {st['max_delta_depth']} / mean {st['mean_delta_depth']}")
    if repo.get("generation_seconds") is not None:
        add(f"  generated in {repo['generation_seconds']:.0f} s (fast-import {repo['fast_import_seconds']:.0f} s, "
            f"repack {repo['repack_seconds']:.0f} s){', cached from an earlier run' if repo.get('cached') else ''}")
    pub = report["publish"]
    add(f"  mirrorci publish: bundle {fmt_mb(pub['bundle_bytes'])} + idx {fmt_mb(pub['idx_bytes'])} in "
        f"{pub['seconds']:.1f} s; {report['machine']}")
    add(f"  fresh clones with work tree, {report['runs']} run(s) per method, interleaved, after one untimed "
        f"warm-up git clone; every clone checked against git clone")
    add("")
    add(f"{'method':24} {'median s':>8} {'min-max s':>13} {'origin bytes':>13} {'% pack':>7} {'mirror bytes':>13} "
        f"{'peak MB':>7} {'python':>6}  largest git child (peak/anon MB)")
    for m in METHODS:
        x = s[m]
        py = f"{x['python_mb']:.0f}" if "python_mb" in x else "-"
        add(f"{m:24} {x['median_seconds']:8.2f} {x['min_seconds']:6.2f}-{x['max_seconds']:<6.2f} "
            f"{fmt_bytes(x['origin_bytes']):>13} {100 * x['origin_bytes'] / st['pack_bytes']:6.2f}% "
            f"{fmt_bytes(x['mirror_bytes']):>13} {x['peak_tree_mb']:7.0f} {py:>6}  "
            f"{x['largest_git']} {x['largest_git_mb']:.0f}/{x['largest_git_anon_mb']:.0f}")
    for m in (FAST, STREAMING):
        x = s[m]
        t = ", ".join(f"{k} {v:.2f}" for k, v in x["timings_median"].items() if k != "total")
        add(f"  {m}: apply_path {'/'.join(x['apply_path'])}, final fetch {'/'.join(map(str, x['final_fetch']))}; "
            f"median s: {t}")
        v = x.get("verification")
        if v:
            add(f"  {m}: verification ({v['scope']}) hashed {v['objects']:,} objects in {v['median_seconds']:.2f} s "
                f"beside the work tree; it added {v['median_added_seconds']:.2f} s to the wall time")
        for note in x["unexpected_path"][:1]:
            add(f"  !! {m}: {note}")
    floor = s[FAST]["timings_median"].get("checkout", 0.0)
    add(f"  work tree checkout alone (mirrorci 'checkout' step) takes {floor:.2f} s = "
        f"{floor / s[GIT_CLONE]['median_seconds']:.2f}x git clone: no method can go below that")
    add("")
    add("Targets (goals, not assertions):")
    for c in report["targets"]:
        val, tgt = _target_text(c)
        add(f"  {c['check']:36} {val:>9}  {tgt:>9}  {c['result'] or '':4}  {c['note']}")
    moved = report.get("moved_on")
    if moved:
        add("")
        add(f"Origin moved on after the publish ({moved['description']}), one run each:")
        for m in METHODS:
            x = moved["results"][m]
            extra = ""
            if "mirrorci" in x:
                mc = x["mirrorci"]
                extra = (f"  apply_path {mc['apply_path']}, final fetch {mc['final_fetch']}, "
                         f"bytes_from_origin {mc['bytes_from_origin']:,}")
            add(f"  {m:24} {x['seconds']:7.2f} s  origin {fmt_bytes(x['origin_bytes']):>11} "
                f"({100 * x['origin_bytes'] / st['pack_bytes']:.3f}% of pack){extra}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main

def add_common_args(p: argparse.ArgumentParser, size: str) -> None:
    """The options every fresh-clone benchmark takes: --repo, --size, --runs, --workdir, --json, --settle."""
    p.add_argument("--repo", type=Path, help="benchmark this existing repository instead of a generated one")
    p.add_argument("--size", choices=sorted(repogen.PRESETS), default=size,
                   help=f"generated repository preset (default: {size}; small is for debugging)")
    p.add_argument("--runs", type=int, default=3, help="fresh clones per method; medians are reported (default 3)")
    p.add_argument("--workdir", type=Path, help="cache and scratch space (default: <tmp>/mirrorci-bench)")
    p.add_argument("--json", action="store_true",
                   help="print the results as one JSON object on stdout (the table goes to stderr)")
    p.add_argument("--settle", type=float, default=SETTLE_SECONDS, metavar="SECONDS",
                   help=f"before measuring, wait until this long after the previous run deleted its clones "
                        f"(default {SETTLE_SECONDS}; see bench/README.md)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, "gitlike")
    p.add_argument("--no-moved-on", action="store_true", help="skip the 'origin moved on after publish' scenario")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("git",):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is not installed")
    workdir = (args.workdir or default_workdir()).absolute()
    run_dir = workdir / "run"
    workdir.mkdir(parents=True, exist_ok=True)
    delete_tree(run_dir / "clones", workdir)  # left over by an interrupted run
    shutil.rmtree(run_dir, ignore_errors=True)
    for d in ("srv", "store", "clones", "logs"):
        (run_dir / d).mkdir(parents=True)

    source, description, meta = source_repo(args.repo, args.size, workdir)
    repo_info: dict = {"description": description, "cached": None, "generation_seconds": None, **meta}
    origin = run_dir / "srv" / "origin.git"
    log(f"making the bare origin from {source.name}")
    make_origin(source, origin, generated=not args.repo)
    if args.repo or "stats" not in repo_info:
        log("measuring the origin pack (objects, delta depths)")
        repo_info["stats"] = repogen.pack_stats(origin)
    repo_info["refs"] = len(git("for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags", cwd=origin).split())
    pack_bytes = repo_info["stats"]["pack_bytes"]

    daemon, daemon_port = start_daemon(run_dir / "srv", run_dir / "logs")
    try:
        with CountingProxy(("127.0.0.1", daemon_port)) as proxy, StoreServer(run_dir / "store") as store:
            url = f"git://127.0.0.1:{proxy.port}/origin.git"
            log(f"origin {url} (git daemon behind a counting proxy); store {store.url}")

            log("publishing the mirror (mirrorci publish --no-push)")
            t = time.monotonic()
            pub = subprocess.run(
                [sys.executable, "-m", "mirrorci", "publish", "--repo", str(origin), "--no-push",
                 "--store", str(run_dir / "store"), "--public-url", store.url, "--json"],
                env=git_env(), cwd=run_dir, capture_output=True, text=True)
            if pub.returncode != 0:
                raise BenchError(f"mirrorci publish failed (exit {pub.returncode}):\n{pub.stderr[-3000:]}")
            published = json.loads(pub.stdout)
            publish_info = {"seconds": round(time.monotonic() - t, 2), "bundle_bytes": published["bundle"]["size"],
                            "idx_bytes": published["index"]["size"], "bundle_list_url": published["bundle_list_url"],
                            "timings": published.get("timings")}

            bench = Bench(run_dir, url, published["bundle_list_url"], proxy, store)
            os.sync()
            settle(workdir, args.settle)
            log("warm-up: one untimed git clone (page cache, and the reference every clone must match)")
            warm, expected = bench.one(GIT_CLONE, "warmup", None, deep=True)
            results = bench.rounds("current", args.runs, expected)
            summary = {m: summarize(results[m]) for m in METHODS}

            moved = None
            if not args.no_moved_on:
                new_head = advance_origin(origin)
                log(f"origin moved on: one new commit {new_head[:12]} on the default branch, mirror not republished")
                moved_results = bench.rounds("moved", 1, None)
                moved = {"description": "1 new commit touching 3 files, mirror not republished",
                         "results": {m: moved_results[m][0] for m in METHODS}}
    finally:
        stop_daemon(daemon)

    report = {
        "repository": repo_info, "publish": publish_info, "runs": args.runs,
        "machine": f"{os.cpu_count()} CPUs, {git('--version')}, Python {platform.python_version()}",
        "summary": summary, "targets": evaluate(summary, pack_bytes),
        "moved_on": moved, "warmup": warm, "raw": results,
    }
    finish(report, table(report), workdir / "last-result.json", args.json, run_dir / "clones", workdir)
    return 0


def finish(report: dict, text: str, result_file: Path, as_json: bool, clones: Path, workdir: Path) -> None:
    """Print the table (and JSON), keep the result file, delete the clones: the end of every benchmark."""
    result_file.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if as_json:
        print(text, file=sys.stderr)
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(text)
    log("deleting the clones")
    delete_tree(clones, workdir)


def run_main(main: Callable[[], int]) -> None:
    """Exit codes of a benchmark script: 1 for a failed step, 130 when interrupted."""
    try:
        sys.exit(main())
    except (BenchError, RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        log(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run_main(main)
