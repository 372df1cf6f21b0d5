#!/usr/bin/env python3
"""Sparse checkout of one directory: mirrorci against git clone and actions/checkout's partial clone.

    python bench/sparse.py [--size large] [--repo PATH] [--dir DIR] [--runs N] [--workdir DIR]
                           [--settle SECONDS] [--json]

One run: a bare origin that serves partial clones (`uploadpack.allowFilter`,
`uploadpack.allowAnySHA1InWant`) through `git daemon` behind a byte-counting
proxy, its mirror published to a store served over HTTP; one directory chosen
(--dir, default the top-level directory with the most files at HEAD). Then, in
each round, interleaved, a fresh clone with each method:

1. `git clone` (every file: the baseline),
2. what actions/checkout runs for `sparse-checkout: DIR` with `fetch-depth: 0`
   (a sparse checkout implies `filter: blob:none`): `git init`, `git remote add`,
   `git config gc.auto 0`, `git -c protocol.version=2 fetch --prune
   --no-recurse-submodules --filter=blob:none origin +refs/heads/*:refs/remotes/origin/*
   +refs/tags/*:refs/tags/*`, `git sparse-checkout set DIR`,
   `git checkout --force -B main refs/remotes/origin/main` (which fetches DIR's blobs),
3. the same with its default `fetch-depth: 1`: `fetch --no-tags --depth=1
   --filter=blob:none origin +<commit>:refs/remotes/origin/main`,
4. `mirrorci checkout` (every file, through the mirror),
5. `mirrorci checkout --sparse-checkout DIR`.

Per method: wall time (median of --runs), ratio to git clone, bytes origin and the
store served, files in the work tree, and whether the clone holds the whole
history. Every clone is checked against the plain `git clone` (HEAD, branch,
index; refs too for mirrorci). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from repogen import git, git_env, log  # noqa: E402
from run import (  # noqa: E402
    BenchError,
    add_common_args,
    counted_run,
    finish,
    fmt_bytes,
    fresh_run_dir,
    make_origin,
    run_main,
    settle,
    snapshot,
    source_repo,
    start_daemon,
    stop_daemon,
    verify,
)
from servers import CountingProxy, StoreServer  # noqa: E402
from warm import publish  # noqa: E402

CLONE = "git clone"
ACTIONS = "actions/checkout sparse"
ACTIONS_DEPTH1 = "actions/checkout sparse depth=1"
FULL = "mirrorci"
SPARSE = "mirrorci sparse"
METHODS = (CLONE, ACTIONS, ACTIONS_DEPTH1, FULL, SPARSE)
SPARSE_METHODS = (ACTIONS, ACTIONS_DEPTH1, SPARSE)
MIRRORCI = (FULL, SPARSE)
ORIGIN_CONFIG = ("uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant")


# ---------------------------------------------------------------------------- setup

def choose_dir(origin: Path, wanted: str | None) -> dict:
    """The directory to check out: --dir, or the top-level directory with the most files at HEAD."""
    paths = git("ls-tree", "-r", "--name-only", "HEAD", cwd=origin).splitlines()
    counts: dict[str, int] = {}
    for path in paths:
        if "/" in path:
            top = path.split("/", 1)[0]
            counts[top] = counts.get(top, 0) + 1
    if not counts:
        raise BenchError("the repository has no directories at HEAD")
    directory = wanted.strip("/") if wanted else max(sorted(counts), key=lambda d: counts[d])
    inside = sum(1 for p in paths if p.startswith(f"{directory}/"))
    if not inside:
        raise BenchError(f"--dir {wanted}: no files under it at HEAD")
    return {"dir": directory, "files": inside, "total_files": len(paths),
            "top_level_files": sum(1 for p in paths if "/" not in p), "top_level_dirs": len(counts),
            "fraction": round(inside / len(paths), 4)}


def actions_checkout(url: str, dest: Path, directory: str, branch: str, commit: str | None) -> list[str]:
    """The git commands actions/checkout runs for `sparse-checkout: DIR`, as one shell script.

    `commit` set: its default `fetch-depth: 1` (the event's commit, no tags); None:
    `fetch-depth: 0` (every branch and tag). A sparse checkout implies `filter: blob:none`.
    """
    if commit:
        fetch = ["--no-tags", "--prune", "--no-recurse-submodules", "--filter=blob:none", "--depth=1", "origin",
                 f"+{commit}:refs/remotes/origin/{branch}"]
    else:
        fetch = ["--prune", "--no-recurse-submodules", "--filter=blob:none", "origin",
                 "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
    in_dest = ["git", "-C", str(dest)]
    steps = [
        ["git", "init", "--quiet", str(dest)],
        [*in_dest, "remote", "add", "origin", url],
        [*in_dest, "config", "--local", "gc.auto", "0"],
        [*in_dest, "-c", "protocol.version=2", "fetch", "--quiet", *fetch],
        [*in_dest, "sparse-checkout", "set", directory],
        [*in_dest, "checkout", "--quiet", "--force", "-B", branch, f"refs/remotes/origin/{branch}"],
    ]
    return ["sh", "-ec", "\n".join(shlex.join(step) for step in steps)]


# ---------------------------------------------------------------------------- checks

def worktree_files(dest: Path) -> int:
    count = 0
    for root, dirs, files in os.walk(dest):
        if Path(root) == dest:
            dirs[:] = [d for d in dirs if d != ".git"]
        count += len(files)
    return count


def history(dest: Path) -> dict:
    """Commits and objects every ref reaches, and how many of them the clone lacks (not fetched lazily)."""
    listing = subprocess.run(["git", "rev-list", "--objects", "--all", "--missing=print"], cwd=dest,
                             env=git_env(), capture_output=True, check=True).stdout.splitlines()
    missing = sum(1 for line in listing if line.startswith(b"?"))
    pack_kib = dict(line.split(": ", 1) for line in git("count-objects", "-v", cwd=dest).splitlines())
    return {"shallow": git("rev-parse", "--is-shallow-repository", cwd=dest) == "true",
            "commits": int(git("rev-list", "--count", "--all", cwd=dest)),
            "objects": len(listing) - missing, "missing": missing,
            "pack_bytes": (int(pack_kib["size-pack"]) + int(pack_kib["size"])) * 1024}


def reference(dest: Path, directory: str) -> dict:
    """What the plain git clone holds: every clone is compared with it."""
    paths = git("ls-files", cwd=dest).splitlines()
    cone = sum(1 for p in paths if "/" not in p or p.startswith(f"{directory}/"))
    return {"snapshot": snapshot(dest), "files": len(paths), "sparse_files": cone, "history": history(dest)}


def check(method: str, dest: Path, ref: dict, files: int) -> list[str]:
    """mirrorci must equal git clone (refs included); actions/checkout's fetch leaves other refs by design."""
    if method in MIRRORCI:
        problems = verify(method, dest, ref["snapshot"], deep=False)
    else:
        got = snapshot(dest)
        problems = [f"{key} differs from git clone" for key in ("head", "head_ref", "index_sha256")
                    if got[key] != ref["snapshot"][key]]
        if git("status", "--porcelain", "--untracked-files=no", cwd=dest):
            problems.append("work tree differs from HEAD")
    want = ref["sparse_files"] if method in SPARSE_METHODS else ref["files"]
    if files != want:
        problems.append(f"{files} files in the work tree, expected {want}")
    return problems


def complete(h: dict, ref: dict) -> bool:
    full = ref["history"]
    return not h["shallow"] and not h["missing"] and (h["commits"], h["objects"]) == (full["commits"], full["objects"])


# ---------------------------------------------------------------------------- measuring

class Sparse:
    def __init__(self, run_dir: Path, url: str, proxy: CountingProxy, store: StoreServer, directory: str,
                 branch: str, tip: str) -> None:
        self.run_dir, self.url, self.proxy, self.store = run_dir, url, proxy, store
        self.directory, self.branch, self.tip = directory, branch, tip
        self.seq = 0

    def argv(self, method: str, dest: Path, rusage: Path) -> list[str]:
        if method == CLONE:
            return ["git", "clone", "--quiet", self.url, str(dest)]
        if method in (ACTIONS, ACTIONS_DEPTH1):
            return actions_checkout(self.url, dest, self.directory, self.branch,
                                    self.tip if method == ACTIONS_DEPTH1 else None)
        extra = ["--sparse-checkout", self.directory] if method == SPARSE else []
        return [sys.executable, str(HERE / "wrap_mirrorci.py"), str(rusage),
                "checkout", self.url, "--path", str(dest), "--json", *extra]

    def one(self, method: str, ref: dict | None, deep: bool) -> tuple[dict, dict | None]:
        """One fresh clone: timed, counted, checked (kept until the end of the run).

        With `ref` None (the untimed git clone), returns the reference the others must match.
        """
        self.seq += 1
        tag = f"{self.seq:02d}-{method.replace(' ', '_').replace('/', '_').replace('=', '')}"
        dest = self.run_dir / "clones" / tag
        rusage = self.run_dir / "logs" / f"{tag}.rusage.json"
        r, origin_bytes, store_bytes = counted_run(method, self.argv(method, dest, rusage), self.run_dir, tag,
                                                   self.proxy, self.store)
        res: dict = {"method": method, "seconds": round(r.seconds, 3), "origin_bytes": origin_bytes,
                     "store_bytes": store_bytes, "maxrss_tree_mb": round(r.maxrss_kb / 1024, 1),
                     "files": worktree_files(dest)}
        if method in MIRRORCI:
            out = json.loads(r.stdout)
            res["mirrorci"] = {k: out.get(k) for k in ("method", "apply_path", "final_fetch", "bytes_from_mirror",
                                                        "bytes_from_origin", "timings", "fallbacks", "warnings")}
            if out.get("apply_path") != "fast" or out.get("final_fetch"):
                res["unexpected"] = (f"apply_path={out.get('apply_path')!r} final_fetch={out.get('final_fetch')!r} "
                                     f"fallbacks={out.get('fallbacks')}")
                log(f"WARNING: {method}: expected the fast path without a final fetch: {res['unexpected']}")
        if ref is None:
            made = reference(dest, self.directory)
            res["history"] = made["history"]
        else:
            made = None
            problems = check(method, dest, ref, res["files"])
            if problems:
                raise BenchError(f"{method}: the clone differs from git clone (kept in {dest}):\n  "
                                 + "\n  ".join(problems))
            if deep:
                res["history"] = history(dest)
        os.sync()  # untimed: the next clone must not pay for this one's writeback
        log(f"  {method:32} {r.seconds:7.2f} s  origin {origin_bytes:>12,} B  store {store_bytes:>12,} B  "
            f"{res['files']:>6} files")
        return res, made


def summarize(runs: list[dict], ref: dict) -> dict:
    secs = [r["seconds"] for r in runs]
    h = runs[0]["history"]
    s = {"runs": len(runs), "median_seconds": round(statistics.median(secs), 3),
         "min_seconds": round(min(secs), 3), "max_seconds": round(max(secs), 3),
         "origin_bytes": int(statistics.median(r["origin_bytes"] for r in runs)),
         "store_bytes": int(statistics.median(r["store_bytes"] for r in runs)),
         "peak_tree_mb": max(r["maxrss_tree_mb"] for r in runs), "files": runs[0]["files"],
         "history": h, "history_complete": complete(h, ref),
         "unexpected": [r["unexpected"] for r in runs if "unexpected" in r]}
    if "mirrorci" in runs[0]:
        mc = [r["mirrorci"] for r in runs]
        s["apply_path"] = sorted({m["apply_path"] or "none" for m in mc})
        keys = sorted({k for m in mc for k in (m["timings"] or {})})
        s["timings_median"] = {k: round(statistics.median((m["timings"] or {}).get(k, 0.0) for m in mc), 3)
                               for k in keys}
    return s


# ---------------------------------------------------------------------------- report

def history_text(x: dict, ref: dict) -> str:
    h, full = x["history"], ref["history"]
    if x["history_complete"]:
        return "complete"
    commits = f"{h['commits']:,}/{full['commits']:,} commits" + (" (shallow)" if h["shallow"] else "")
    return f"{commits}, {h['missing']:,} blobs missing"


def table(report: dict) -> str:
    s, d, ref = report["summary"], report["directory"], report["reference"]
    clone = s[CLONE]["median_seconds"]
    lines = [
        f"sparse checkout benchmark: {report['repository']}; {report['machine']}",
        f"  directory {d['dir']}/: {d['files']:,} of {d['total_files']:,} files at HEAD ({100 * d['fraction']:.1f}%; "
        + (f"the largest of {d['top_level_dirs']} top-level directories" if report["dir_chosen"] else "--dir")
        + f"); cone mode adds the {d['top_level_files']} top-level files",
        f"  origin: git daemon (uploadpack.allowFilter, allowAnySHA1InWant) behind a counting proxy; "
        f"mirror bundle {fmt_bytes(report['publish']['bundle_bytes'])}",
        f"  medians of {report['runs']}, methods interleaved, after one untimed git clone; every clone checked "
        f"against it; 1-minute load average at the start and after each round: "
        + " ".join(map(str, report["load_average"])),
        "",
        f"{'method':32} {'median s':>8} {'min-max s':>13} {'x clone':>7} {'origin bytes':>13} {'store bytes':>12} "
        f"{'files':>6} {'pack+idx':>10} {'peak MB':>7}  history",
    ]
    for m in METHODS:
        x = s[m]
        lines.append(
            f"{m:32} {x['median_seconds']:8.2f} {x['min_seconds']:6.2f}-{x['max_seconds']:<6.2f} "
            f"{x['median_seconds'] / clone:6.3f}x {fmt_bytes(x['origin_bytes']):>13} {fmt_bytes(x['store_bytes']):>12} "
            f"{x['files']:>6} {fmt_bytes(x['history']['pack_bytes']):>10} {x['peak_tree_mb']:7.0f}  "
            f"{history_text(x, ref)}")
    for m in MIRRORCI:
        x = s[m]
        t = ", ".join(f"{k} {v:.2f}" for k, v in x["timings_median"].items() if k != "total")
        lines.append(f"  {m}: {'/'.join(x['apply_path'])} path; median s: {t}")
        lines += [f"  !! {m}: {note}" for note in x["unexpected"][:1]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, "large")
    p.add_argument("--dir", help="directory to check out (default: the top-level directory with the most files)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def prepare(args: argparse.Namespace, workdir: Path, run_dir: Path) -> tuple[Path, str, dict]:
    """The bare origin, ready for partial clones; the repository's description; the directory."""
    source, description, _meta = source_repo(args.repo, args.size, workdir)
    origin = run_dir / "srv" / "origin.git"
    log(f"making the bare origin from {source.name}")
    make_origin(source, origin, generated=not args.repo)
    for key in ORIGIN_CONFIG:
        git("config", key, "true", cwd=origin)
    return origin, description, choose_dir(origin, args.dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, run_dir = fresh_run_dir(args.workdir, "sparse")
    origin, description, directory = prepare(args, workdir, run_dir)
    head = git("symbolic-ref", "HEAD", cwd=origin)
    branch, tip = head.removeprefix("refs/heads/"), git("rev-parse", head, cwd=origin)
    log(f"directory {directory['dir']}/: {directory['files']:,} of {directory['total_files']:,} files")

    daemon, daemon_port = start_daemon(run_dir / "srv", run_dir / "logs")
    try:
        with CountingProxy(("127.0.0.1", daemon_port)) as proxy, StoreServer(run_dir / "store") as store:
            url = f"git://127.0.0.1:{proxy.port}/origin.git"
            log(f"origin {url}; store {store.url}; publishing the mirror")
            pub = publish(origin, run_dir / "store", store.url, run_dir)
            bench = Sparse(run_dir, url, proxy, store, directory["dir"], branch, tip)
            os.sync()
            settle(workdir, args.settle)
            load = [round(os.getloadavg()[0], 2)]
            log("warm-up: one untimed git clone (page cache, and the reference every clone must match)")
            warmup, ref = bench.one(CLONE, None, deep=True)
            assert ref is not None
            results: dict[str, list[dict]] = {m: [] for m in METHODS}
            for i in range(args.runs):
                log(f"round {i + 1}/{args.runs}")
                for m in METHODS:  # interleaved, so drift hits every method alike
                    results[m].append(bench.one(m, ref, deep=(i == 0))[0])
                load.append(round(os.getloadavg()[0], 2))
    finally:
        stop_daemon(daemon)

    report = {
        "repository": description, "directory": directory, "dir_chosen": not args.dir, "runs": args.runs,
        "machine": f"{os.cpu_count()} CPUs, {git('--version')}, Python {platform.python_version()}",
        "load_average": load, "publish": {"seconds": pub["_seconds"], "bundle_bytes": pub["bundle"]["size"]},
        "commands": {ACTIONS: bench.argv(ACTIONS, Path("DEST"), Path("-"))[-1],
                     ACTIONS_DEPTH1: bench.argv(ACTIONS_DEPTH1, Path("DEST"), Path("-"))[-1]},
        "reference": {"files": ref["files"], "sparse_files": ref["sparse_files"], "history": ref["history"]},
        "summary": {m: summarize(results[m], ref) for m in METHODS}, "warmup": warmup, "raw": results,
    }
    finish(report, table(report), workdir / "last-sparse-result.json", args.json, run_dir / "clones", workdir)
    return 0


if __name__ == "__main__":
    run_main(main)
