#!/usr/bin/env python3
"""Warm self-hosted runner, one publish behind: a reused workspace or cache against git fetch.

    python bench/warm.py [--size gitlike] [--repo PATH] [--behind N] [--runs N] [--workdir DIR]
                         [--settle SECONDS] [--json]

One run: rewind a bare copy of the generated repository by N commits ("release 1"),
publish it, and make a runner's state at release 1: a `--cache-dir` warmed by one
checkout, a workspace made by `mirrorci checkout` and a plain `git clone`. Then
restore origin to the original refs ("release 2") and publish again to the same
store (which adds one increment to the chain). Each round, interleaved, from fresh
copies of that state:

1. `mirrorci checkout --clean` into the mirrorci workspace (updated in place: only
   the increment after the bundles it records, only the changed files written);
2. what actions/checkout runs in a workspace it checked out before (`clean: true`,
   `fetch-depth: 0`): branch cleanup, `clean -ffdx`, `reset --hard HEAD`,
   `fetch --prune` of every branch and tag, `checkout --force -B`;
3. `mirrorci checkout --cache-dir` (a new clone borrowing the warm cache);
4. `git fetch --prune` in the plain clone (no work tree update: git's lower bound);
5. a cold `mirrorci checkout` and 6. a plain `git clone`.

Every result is checked against a `git clone` of release 2; the bytes origin and
the store served are counted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from repogen import git, git_env, log  # noqa: E402
from run import (  # noqa: E402
    BenchError,
    _ok,
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

REUSE = "mirrorci workspace reuse"
GIT_REUSE = "git workspace reuse"
WARM = "mirrorci warm cache"
FETCH = "git fetch (warm clone)"
COLD = "mirrorci cold"
CLONE = "git clone"
METHODS = (REUSE, GIT_REUSE, WARM, FETCH, COLD, CLONE)
MIRRORCI = (REUSE, WARM, COLD)
REUSED = (REUSE, GIT_REUSE)  # a workspace updated in place: leftovers planted, checked gone
FETCH_REFSPECS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
ORIGIN_HEAD = "refs/remotes/origin/HEAD"


# ---------------------------------------------------------------------------- releases

def refs_of(repo: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags", cwd=repo)
    pairs = (line.split(" ", 1) for line in out.splitlines() if line)
    return {ref: oid for ref, oid in pairs}


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


def release2(source: Path, origin: Path, store: Path, url: str, run_dir: Path, want: dict[str, str],
             pub1: dict) -> dict:
    """Origin fetches the original refs back and repacks; the second publish must add one increment."""
    git("fetch", "--quiet", str(source), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", cwd=origin)
    repack_clean(origin)
    if refs_of(origin) != want:
        raise BenchError("origin's refs after the release-2 fetch differ from the original repository")
    pub2 = publish(origin, store, url, run_dir)
    inc = pub2.get("increment")
    if pub2.get("published") != "increment" or not inc:
        raise BenchError(f"the second publish wrote no increment: {json.dumps(pub2)[:2000]}")
    if inc.get("parent_sha256") != pub1["bundle"]["sha256"]:
        log(f"WARNING: the increment's parent_sha256 {inc.get('parent_sha256')} is not release 1's bundle "
            f"{pub1['bundle']['sha256']}")
    return pub2


# ---------------------------------------------------------------------------- the runner at release 1

@dataclass
class Runner:
    """What a self-hosted runner kept from its job at release 1."""

    cache: Path  # --cache-dir after one checkout
    mirrorci_workspace: Path  # made by `mirrorci checkout` (it records the bundles it holds)
    git_workspace: Path  # a plain `git clone`, as actions/checkout would have left it
    branch: str  # origin's default branch
    setup: dict  # what the setup checkouts reported


def setup_checkout(url: str, dest: Path, cwd: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "mirrorci", "checkout", url, "--path", str(dest), "--json", *extra],
                          env=git_env(), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"setup checkout into {dest} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout)
    return {k: out.get(k) for k in ("method", "apply_path", "final_fetch", "bytes_from_mirror", "bytes_from_origin")}


def make_runner(url: str, run_dir: Path, origin: Path, bundle_sha: str) -> Runner:
    """A warm cache, a mirrorci workspace and a git workspace, all at release 1 (untimed)."""
    head_ref = git("symbolic-ref", "HEAD", cwd=origin)
    tip = git("rev-parse", head_ref, cwd=origin)
    cache, job0 = run_dir / "cache", run_dir / "clones" / "job0"
    setup = {"cache": setup_checkout(url, job0, run_dir, "--cache-dir", str(cache))}
    if bundle_sha not in (cache / "applied-bundles").read_text().split():
        raise BenchError("the warm-up checkout did not record release 1's bundle in the cache")
    shutil.rmtree(job0)  # the cache holds hard links to its packs; nothing else needs it
    ws_mirrorci, ws_git = run_dir / "workspace-mirrorci", run_dir / "workspace-git"
    setup["workspace"] = setup_checkout(url, ws_mirrorci, run_dir)
    if bundle_sha not in (ws_mirrorci / ".git" / "mirrorci" / "bundles").read_text().split():
        raise BenchError("the release-1 workspace does not record release 1's bundle in .git/mirrorci/bundles")
    git("clone", "--quiet", url, str(ws_git))
    # actions/checkout never clones, so its workspaces have no origin/HEAD; with one, its branch
    # cleanup lists origin/<default> twice and fails on the second delete (and recreates the clone).
    git("symbolic-ref", "--delete", ORIGIN_HEAD, cwd=ws_git)
    for ws in (ws_mirrorci, ws_git):
        if git("rev-parse", "HEAD", cwd=ws) != tip:
            raise BenchError(f"{ws} is not at release 1")
    return Runner(cache, ws_mirrorci, ws_git, head_ref.removeprefix("refs/heads/"), setup)


def reused_workspace(source: Path, dest: Path) -> None:
    """A copy of a workspace as the previous job left it: index fresh, some build output, one edited file.

    `cp -a` gives every file a new inode and ctime; without `update-index --refresh` git would
    take every file for changed and rewrite them all, which a runner reusing its workspace never does.
    """
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    git("update-index", "--refresh", cwd=dest)
    build = dest / "build" / "obj"
    build.mkdir(parents=True)
    for i in range(20):
        (build / f"unit{i}.o").write_bytes(os.urandom(4096))
    edited = dest / git("ls-files", cwd=dest).splitlines()[0]
    with edited.open("a") as f:
        f.write("// edited by the previous job\n")


def actions_checkout_reuse(dest: Path, branch: str, times: Path) -> list[str]:
    """What actions/checkout runs (`clean: true`, `fetch-depth: 0`) in a workspace it checked out before.

    From its git-directory-helper and git-source-provider: remove stale locks, detach HEAD,
    delete every local branch and every origin/* one by one, `clean -ffdx`, `reset --hard HEAD`,
    `gc.auto 0`, fetch every branch and tag with --prune, check the ref, `sparse-checkout
    disable`, `checkout --force -B`, `log -1`. Left out: its auth and safe.directory config.
    One bash script; each step appends its name and start time to `times`.
    """
    g = shlex.join(["git", "-C", str(dest)])
    refspecs = " ".join(shlex.quote(s) for s in FETCH_REFSPECS)
    steps = {
        "unlock": f"rm -f {shlex.quote(str(dest / '.git' / 'index.lock'))} "
                  f"{shlex.quote(str(dest / '.git' / 'shallow.lock'))}",
        "detach": f"if {g} rev-parse --symbolic-full-name --verify --quiet HEAD | grep -q '^refs/heads/'; "
                  f"then {g} checkout --detach; fi",
        "delete_branches": f"for b in $({g} rev-parse --symbolic-full-name --branches); "
                           f"do {g} branch --delete --force \"${{b#refs/heads/}}\"; done",
        "delete_remote_branches": f"for b in $({g} rev-parse --symbolic-full-name --remotes=origin); "
                                  f"do {g} branch --delete --force --remote \"${{b#refs/remotes/}}\"; done",
        "clean": f"{g} clean -ffdx",
        "reset": f"{g} reset --hard HEAD --",
        "gc_auto": f"{g} config --local gc.auto 0",
        "fetch": f"{g} -c protocol.version=2 fetch --prune --no-recurse-submodules --progress origin {refspecs}",
        "test_ref": f"{g} rev-parse refs/remotes/origin/{branch}",
        "sparse_disable": f"{g} sparse-checkout disable",
        "checkout": f"{g} checkout --progress --force -B {branch} refs/remotes/origin/{branch}",
        "log": f"{g} log -1 >/dev/null && {g} log -1 --format=%H",
    }
    stamp = f"printf '%s %s\\n' {{}} \"$EPOCHREALTIME\" >> {shlex.quote(str(times))}"
    script = "\n".join(f"{stamp.format(name)}\n{cmd}" for name, cmd in steps.items())
    return ["bash", "-ec", f"{script}\n{stamp.format('end')}"]


def step_times(times: Path) -> dict[str, float]:
    """Seconds per step from the stamps actions_checkout_reuse's script wrote."""
    stamps = [(name, float(t)) for name, t in (line.split() for line in times.read_text().splitlines())]
    return {name: round(stamps[i + 1][1] - t, 3) for i, (name, t) in enumerate(stamps[:-1])}


# ---------------------------------------------------------------------------- measuring

class Warm:
    def __init__(self, run_dir: Path, url: str, proxy: CountingProxy, store: StoreServer, runner: Runner,
                 incremental_size: int) -> None:
        self.run_dir, self.url, self.proxy, self.store = run_dir, url, proxy, store
        self.runner, self.incremental_size = runner, incremental_size
        self.seq = 0

    def mirrorci(self, dest: Path, rusage: Path, *extra: str) -> list[str]:
        return [sys.executable, str(HERE / "wrap_mirrorci.py"), str(rusage),
                "checkout", self.url, "--path", str(dest), "--json", *extra]

    def prepare(self, method: str, dest: Path, tag: str) -> list[str]:
        """Untimed: the runner's state exactly one release behind; the command to time."""
        rusage = self.run_dir / "logs" / f"{tag}.rusage.json"
        if method == REUSE:
            reused_workspace(self.runner.mirrorci_workspace, dest)
            return self.mirrorci(dest, rusage, "--clean")
        if method == GIT_REUSE:
            reused_workspace(self.runner.git_workspace, dest)
            return actions_checkout_reuse(dest, self.runner.branch, self.run_dir / "logs" / f"{tag}.steps")
        if method == WARM:
            cache_copy = dest.with_name(f"{tag}.cache")
            subprocess.run(["cp", "-a", str(self.runner.cache), str(cache_copy)], check=True)
            return self.mirrorci(dest, rusage, "--cache-dir", str(cache_copy))
        if method == FETCH:
            subprocess.run(["cp", "-a", str(self.runner.git_workspace), str(dest)], check=True)
            return ["git", "-C", str(dest), "fetch", "--quiet", "--prune", "origin", *FETCH_REFSPECS]
        if method == COLD:
            return self.mirrorci(dest, rusage)
        return ["git", "clone", "--quiet", self.url, str(dest)]

    def one(self, method: str, expected: dict[str, str] | None, expected_refs: dict[str, str],
            deep: bool) -> tuple[dict, dict | None]:
        """One timed, counted and checked run; with `expected` None (the reference clone), its snapshot."""
        self.seq += 1
        tag = f"{self.seq:02d}-{method.replace(' ', '_').replace('(', '').replace(')', '')}"
        dest = self.run_dir / "clones" / tag
        argv = self.prepare(method, dest, tag)
        os.sync()
        r, origin_bytes, store_bytes = counted_run(method, argv, self.run_dir, tag, self.proxy, self.store)
        res: dict = {"method": method, "seconds": round(r.seconds, 3), "origin_bytes": origin_bytes,
                     "store_bytes": store_bytes, "maxrss_tree_mb": round(r.maxrss_kb / 1024, 1)}
        if method in MIRRORCI:
            res.update(self.mirrorci_result(method, json.loads(r.stdout)))
            # Start-up (interpreter, imports) and what no step times (setting up the target, recording bundles).
            res["timings"]["outside_steps"] = round(r.seconds - res["timings"].get("total", 0.0), 3)
        elif method == GIT_REUSE:
            res["timings"] = step_times(self.run_dir / "logs" / f"{tag}.steps")
        snap = check(method, dest, expected, expected_refs, deep)
        log(f"  {method:24} {r.seconds:7.2f} s  origin {origin_bytes:>11,} B  store {store_bytes:>11,} B"
            + (f"  !! {res['unexpected']}" if "unexpected" in res else ""))
        return res, snap

    def mirrorci_result(self, method: str, out: dict) -> dict:
        """mirrorci's own report, and whether it took the path this scenario is about."""
        res: dict = {"mirrorci": {k: out.get(k) for k in (
            "method", "mirror_uri", "apply_path", "final_fetch", "final_fetch_reason", "bytes_from_mirror",
            "bytes_from_origin", "cache", "workspace", "verified", "fallbacks", "warnings")},
            "timings": out.get("timings") or {}}
        want: dict = {"method": "http", "apply_path": "fast", "final_fetch": False}
        if method in (WARM, REUSE):
            # Only the increment after release 1's bundle, installed with its published index.
            want["bytes_from_mirror"] = self.incremental_size
        if method == REUSE:
            want["workspace"] = "reused"
        problems = [f"{key}={out.get(key)!r}, expected {value!r}" for key, value in want.items()
                    if out.get(key) != value]
        if problems:
            res["unexpected"] = "; ".join(problems) + f" (fallbacks={out.get('fallbacks')}, cache={out.get('cache')!r})"
            log(f"WARNING: {method}: {res['unexpected']}")
        return res


def check(method: str, dest: Path, expected: dict[str, str] | None, expected_refs: dict[str, str],
          deep: bool) -> dict | None:
    """Stop the benchmark unless the result equals a git clone of release 2 (its snapshot if it is the reference)."""
    if method == FETCH:
        got = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/remotes/origin", "refs/tags",
                  cwd=dest).splitlines()
        got_refs = {ref.replace("refs/remotes/origin/", "refs/heads/", 1): oid
                    for ref, oid in (line.split(" ", 1) for line in got) if ref != ORIGIN_HEAD}
        if got_refs != expected_refs:
            raise BenchError(f"{method}: fetched refs differ from release 2 (kept in {dest})")
        return None
    if expected is None:
        if not _ok(dest, "rev-list", "--objects", "--all", "--quiet"):
            raise BenchError(f"{method}: objects are missing in {dest}")
        return snapshot(dest)
    if method == GIT_REUSE:  # no origin/HEAD in actions/checkout's workspaces (see make_runner)
        refs = [line for line in expected["refs"].splitlines() if not line.startswith(f"{ORIGIN_HEAD} ")]
        expected = {**expected, "refs": "\n".join(refs)}
    bad = verify(method, dest, expected, deep)
    if method in REUSED:
        leftovers = git("status", "--porcelain", "--ignored", cwd=dest)
        if leftovers:
            bad.append(f"the previous job's files are left: {leftovers.splitlines()[:3]}")
    if bad:
        raise BenchError(f"{method} produced a clone that differs from a git clone of release 2 "
                         f"(kept in {dest}):\n  " + "\n  ".join(bad))
    return None


def summarize(runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    s = {"runs": len(runs), "median_seconds": round(statistics.median(secs), 3),
         "min_seconds": round(min(secs), 3), "max_seconds": round(max(secs), 3),
         "origin_bytes": int(statistics.median(r["origin_bytes"] for r in runs)),
         "store_bytes": int(statistics.median(r["store_bytes"] for r in runs)),
         "peak_tree_mb": max(r["maxrss_tree_mb"] for r in runs),
         "unexpected": [r["unexpected"] for r in runs if "unexpected" in r]}
    if "timings" in runs[0]:
        keys = list(dict.fromkeys(k for r in runs for k in r["timings"]))
        s["timings_median"] = {k: round(statistics.median(r["timings"].get(k, 0.0) for r in runs), 3) for k in keys}
    if "mirrorci" in runs[0]:
        mc = [r["mirrorci"] for r in runs]
        s["apply_path"] = sorted({m["apply_path"] or "none" for m in mc})
        s["final_fetch"] = sorted({bool(m["final_fetch"]) for m in mc})
        s["mirror_uri"] = sorted({(m["mirror_uri"] or "none").rsplit("/", 1)[-1] for m in mc})
        s["workspace"] = sorted({m["workspace"] or "none" for m in mc})
        s["verified"] = mc[0]["verified"]
    return s


def measure_all(bench: Warm, want_refs: dict[str, str], runs: int) -> dict[str, list[dict]]:
    log("reference: one untimed git clone of release 2")
    _, expected = bench.one(CLONE, None, want_refs, deep=True)
    results: dict[str, list[dict]] = {m: [] for m in METHODS}
    for i in range(runs):
        log(f"round {i + 1}/{runs}")
        for m in METHODS:  # interleaved
            res, _ = bench.one(m, expected, want_refs, deep=(i == 0))
            results[m].append(res)
    return results


# ---------------------------------------------------------------------------- report

def ratios(summary: dict, releases: dict) -> dict:
    med = {m: summary[m]["median_seconds"] for m in METHODS}
    return {
        "reuse_vs_git_reuse": round(med[REUSE] / med[GIT_REUSE], 3),
        "reuse_vs_fetch": round(med[REUSE] / med[FETCH], 3),
        "reuse_vs_cold": round(med[REUSE] / med[COLD], 3),
        "warm_vs_git_reuse": round(med[WARM] / med[GIT_REUSE], 3),
        "warm_vs_fetch": round(med[WARM] / med[FETCH], 3),
        "warm_vs_cold": round(med[WARM] / med[COLD], 3),
        "warm_vs_clone": round(med[WARM] / med[CLONE], 3),
        "git_reuse_vs_fetch": round(med[GIT_REUSE] / med[FETCH], 3),
        "reuse_store_vs_full": round(summary[REUSE]["store_bytes"] / releases["full_bundle_bytes"], 5),
        "warm_store_vs_full": round(summary[WARM]["store_bytes"] / releases["full_bundle_bytes"], 5),
        "incremental_vs_full": round(releases["incremental_bytes"] / releases["full_bundle_bytes"], 5),
    }


def table(report: dict) -> str:
    s, rel = report["summary"], report["releases"]
    lines: list[str] = []
    add = lines.append
    add(f"warm runner, one release behind: {report['repository']}")
    add(f"  release 1 = main~{rel['behind']} ({rel['refs_rewound']} refs rewound, {rel['refs_deleted']} deleted); "
        f"release 2 adds {rel['new_commits']} commits on main")
    add(f"  full bundle {fmt_bytes(rel['full_bundle_bytes'])}, incremental {fmt_bytes(rel['incremental_bytes'])} "
        f"({100 * rel['incremental_bytes'] / rel['full_bundle_bytes']:.2f}% of full); {report['machine']}")
    add(f"  medians of {report['runs']}; each run from a fresh copy of the runner's release-1 state")
    add("")
    add(f"{'method':24} {'median s':>8} {'min-max s':>13} {'origin bytes':>13} {'store bytes':>13}")
    for m in METHODS:
        x = s[m]
        add(f"{m:24} {x['median_seconds']:8.2f} {x['min_seconds']:6.2f}-{x['max_seconds']:<6.2f} "
            f"{fmt_bytes(x['origin_bytes']):>13} {fmt_bytes(x['store_bytes']):>13}")
    for m in (REUSE, GIT_REUSE, WARM, COLD):
        x = s[m]
        t = ", ".join(f"{k} {v:.2f}" for k, v in x["timings_median"].items() if k != "total")
        path = f"{'/'.join(x['apply_path'])} path, final fetch {'/'.join(map(str, x['final_fetch']))}; " \
            if m in MIRRORCI else ""
        add(f"  {m}: {path}{t}")
        for note in x["unexpected"][:1]:
            add(f"  !! {m}: {note}")
    add("")
    r = report["ratios"]
    add(f"  workspace reuse, mirrorci / git (time):  {r['reuse_vs_git_reuse']:.2f}x")
    add(f"  mirrorci workspace reuse / git fetch:    {r['reuse_vs_fetch']:.2f}x")
    add(f"  git workspace reuse / git fetch:         {r['git_reuse_vs_fetch']:.2f}x")
    add(f"  warm cache / git workspace reuse:        {r['warm_vs_git_reuse']:.2f}x")
    add(f"  warm cache / git fetch:                  {r['warm_vs_fetch']:.2f}x")
    add(f"  warm cache / cold mirrorci:              {r['warm_vs_cold']:.2f}x")
    add(f"  warm cache / git clone:                  {r['warm_vs_clone']:.2f}x")
    add(f"  store bytes, workspace reuse / full:     {r['reuse_store_vs_full']:.4f} "
        f"({fmt_bytes(s[REUSE]['store_bytes'])} of {fmt_bytes(rel['full_bundle_bytes'])})")
    add(f"  origin bytes, mirrorci / git (reuse):    {fmt_bytes(s[REUSE]['origin_bytes'])} / "
        f"{fmt_bytes(s[GIT_REUSE]['origin_bytes'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, "gitlike")
    p.add_argument("--behind", type=int, default=300, help="release 1 is main~N (default 300)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.behind < 1:
        p.error("--runs and --behind must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, run_dir = fresh_run_dir(args.workdir, "warm")
    source, description, _meta = source_repo(args.repo, args.size, workdir)
    origin, store_dir = run_dir / "srv" / "origin.git", run_dir / "store"
    log(f"making the bare origin from {source.name}")
    make_origin(source, origin, generated=not args.repo)
    want2 = refs_of(origin)
    log(f"release 1: rewinding origin by {args.behind} commits on main, repacking")
    releases = rewind(origin, args.behind)
    repack_clean(origin)
    releases["release1_refs"], releases["release2_refs"] = len(refs_of(origin)), len(want2)
    daemon, daemon_port = start_daemon(run_dir / "srv", run_dir / "logs")
    try:
        with CountingProxy(("127.0.0.1", daemon_port)) as proxy, StoreServer(store_dir) as store:
            url = f"git://127.0.0.1:{proxy.port}/origin.git"
            log(f"origin {url}; store {store.url}; release 1: mirrorci publish")
            pub1 = publish(origin, store_dir, store.url, run_dir)
            log("the runner at release 1: a warm --cache-dir, a mirrorci workspace, a git clone")
            runner = make_runner(url, run_dir, origin, pub1["bundle"]["sha256"])
            log("release 2: origin fetches the original refs back, repacks; mirrorci publish to the same store")
            pub2 = release2(source, origin, store_dir, store.url, run_dir, want2, pub1)
            inc = pub2["increment"]
            releases.update({
                "full_bundle_bytes": pub2["base"]["size"], "incremental_bytes": inc["size"],
                "release1_bundle_bytes": pub1["bundle"]["size"], "origin_pack_bytes": pack_bytes(origin),
                "incremental": inc, "publish_seconds": [pub1["_seconds"], pub2["_seconds"]],
                "setup_checkouts": runner.setup,
            })
            settle(workdir, args.settle)
            results = measure_all(Warm(run_dir, url, proxy, store, runner, inc["size"]), want2, args.runs)
    finally:
        stop_daemon(daemon)
    summary = {m: summarize(results[m]) for m in METHODS}
    report = {
        "repository": description, "releases": releases, "runs": args.runs,
        "machine": f"{os.cpu_count()} CPUs, {git('--version')}, Python {platform.python_version()}",
        "summary": summary, "ratios": ratios(summary, releases), "raw": results,
    }
    finish(report, table(report), workdir / "last-warm-result.json", args.json, run_dir / "clones", workdir)
    return 0


if __name__ == "__main__":
    run_main(main)
