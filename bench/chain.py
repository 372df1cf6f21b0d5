#!/usr/bin/env python3
"""The chain of bundles: publishing an increment vs a new base, the store after many publishes, cold checkouts.

    python bench/chain.py [--size gitlike] [--repo PATH] [--runs N] [--behind N] [--publishes N]
                          [--chain N] [--no-checkout] [--workdir DIR] [--json]

1. Publish timing. Origin rewound by --behind commits ("release 1") is published as a
   base; origin gets the commits back ("release 2"). Each round times, as separate
   `mirrorci publish` processes: one increment on top of release 1's base (the mirror
   ref reset to release 1's list and the increment's files removed first, so every
   round uploads), and a new base of release 2 into an empty store (`--max-chain 0`).
   Target: increment <= 0.2x base.
2. Store size. --publishes publishes (default 20), each after one new commit touching
   3 files, with the default chain limits and `--grace 0`: store bytes and files
   after each, against the bytes the current and previous lists reference, and
   against what every publish wrote (what a store without retention would hold).
3. Cold checkouts (skip with --no-checkout). A chain of --chain increments (default 8,
   one commit each) and a single base of the same history, each advertised in turn
   through origin's refs/mirrors/bundle/http; `mirrorci checkout` without a cache,
   interleaved, medians. Target: chain <= 1.1x single base.
The warm runner (one publish behind) is bench/warm.py. See bench/README.md.
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

import repogen  # noqa: E402
from repogen import git, git_env, log  # noqa: E402
from run import BenchError, advance_origin, default_workdir, delete_tree, finish, run_main, start_daemon  # noqa: E402
from servers import CountingProxy, StoreServer  # noqa: E402
from warm import refs_of, repack_clean, rewind  # noqa: E402

LIST_REF = "refs/mirrors/bundle/http"
TARGET_PUBLISH = 0.2
TARGET_COLD = 1.1


def publish(origin: Path, store: Path, url: str, *extra: str) -> dict:
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mirrorci", "publish", "--repo", str(origin), "--no-push",
                           "--store", str(store), "--public-url", url, "--name", "bench", "--json", *extra],
                          env=git_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"mirrorci publish failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout)
    out["_seconds"] = round(time.monotonic() - t, 3)
    return out


def set_list(origin: Path, oid: str | None) -> None:
    if oid:
        git("update-ref", LIST_REF, oid, cwd=origin)
    else:
        subprocess.run(["git", "update-ref", "-d", LIST_REF], cwd=origin, env=git_env(), check=False)


def list_oid(origin: Path) -> str:
    return git("rev-parse", LIST_REF, cwd=origin)


def tree_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def bare_copy(source: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    git("clone", "--quiet", "--bare", "--local", str(source), str(dest))
    git("remote", "remove", "origin", cwd=dest)
    return dest


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


# ---------------------------------------------------------------------------- 1. publish timing

def publish_timing(source: Path, run_dir: Path, store_root: Path, url: str, behind: int, runs: int) -> dict:
    origin = bare_copy(source, run_dir / "srv" / "publish.git")
    rewind(origin, behind)
    repack_clean(origin)
    chain_store = store_root / "timing-chain"
    base1 = publish(origin, chain_store, f"{url}/timing-chain")
    release1_list = list_oid(origin)
    git("fetch", "--quiet", str(source), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", cwd=origin)
    log(f"publish timing: release 1 base {base1['bundle']['size']} bytes in {base1['_seconds']} s; "
        f"{runs} rounds of increment / new base")
    inc_runs, base_runs, inc, base = [], [], {}, {}
    for i in range(runs):
        set_list(origin, release1_list)
        if inc:
            for key in (inc["bundle"]["key"], inc["index"]["key"]):
                (chain_store / key).unlink(missing_ok=True)
        inc = publish(origin, chain_store, f"{url}/timing-chain", "--collapse-fraction", "100")
        if inc["published"] != "increment":
            raise BenchError(f"expected an increment, got {inc['published']}: {inc['reason']}")
        inc_runs.append(inc["_seconds"])
        fresh = store_root / f"timing-base-{i}"
        base = publish(origin, fresh, f"{url}/timing-base-{i}", "--max-chain", "0")
        base_runs.append(base["_seconds"])
        delete_tree(fresh, store_root)
        log(f"  round {i + 1}: increment {inc['_seconds']} s ({inc['bundle']['size']} bytes), "
            f"base {base['_seconds']} s ({base['bundle']['size']} bytes)")
    delete_tree(origin, run_dir)
    return {
        "behind": behind, "increment_seconds": inc_runs, "base_seconds": base_runs,
        "increment_median": median(inc_runs), "base_median": median(base_runs),
        "ratio": round(median(inc_runs) / median(base_runs), 3),
        "increment_bytes": inc["bundle"]["size"], "base_bytes": base["bundle"]["size"],
        "increment_timings": inc["timings"], "base_timings": base["timings"],
    }


# ---------------------------------------------------------------------------- 2. store size

def store_growth(source: Path, run_dir: Path, store_root: Path, url: str, publishes: int) -> dict:
    origin = bare_copy(source, run_dir / "srv" / "growth.git")
    store = store_root / "growth"
    first = publish(origin, store, f"{url}/growth", "--grace", "0")
    written = first["bundle"]["size"] + (first["index"]["size"] if first["index"] else 0)
    rows = []
    lists: list[str] = [git("cat-file", "blob", LIST_REF, cwd=origin)]
    for i in range(publishes):
        advance_origin(origin)
        out = publish(origin, store, f"{url}/growth", "--grace", "0")
        if out["published"] != "nothing":
            written += out["bundle"]["size"] + (out["index"]["size"] if out["index"] else 0)
        lists.append(git("cat-file", "blob", LIST_REF, cwd=origin))
        size, files = tree_bytes(store / "bench" / "bundles")
        rows.append({"publish": i + 1, "published": out["published"], "chain_length": out["chain_length"],
                     "seconds": out["_seconds"], "store_bytes": size, "store_files": files,
                     "chain_bytes": sum(e["size"] for e in out["chain"]),
                     "deleted": len(out["retention"].get("deleted", []))})
    last = rows[-1]
    delete_tree(origin, run_dir)
    return {
        "publishes": publishes, "rows": rows, "final_store_bytes": last["store_bytes"],
        "final_store_files": last["store_files"], "final_chain_bytes": last["chain_bytes"],
        "max_store_bytes": max(r["store_bytes"] for r in rows),
        "written_bytes": written, "base_bytes": first["bundle"]["size"],
    }


# ---------------------------------------------------------------------------- 3. cold checkouts

def cold_checkouts(source: Path, run_dir: Path, store_root: Path, url: str, length: int, runs: int) -> dict:
    srv = run_dir / "srv"
    origin = bare_copy(source, srv / "cold.git")
    release = refs_of(origin)
    head = git("symbolic-ref", "HEAD", cwd=origin)
    tip = release[head]
    rewind(origin, length)
    repack_clean(origin)
    first = publish(origin, store_root / "cold-chain", f"{url}/cold-chain")
    git("fetch", "--quiet", "--no-tags", str(source), f"+{head}:refs/bench/tip", cwd=origin)  # commits to step through
    for i in range(length - 1, -1, -1):
        if i == 0:  # the last step brings every ref back, not only the default branch
            git("fetch", "--quiet", str(source), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", cwd=origin)
        else:
            git("update-ref", head, git("rev-parse", f"{tip}~{i}", cwd=origin), cwd=origin)
        out = publish(origin, store_root / "cold-chain", f"{url}/cold-chain", "--collapse-fraction", "100",
                      "--max-chain", str(length))
        if out["published"] != "increment":
            raise BenchError(f"expected an increment, got {out['published']}: {out['reason']}")
    git("update-ref", "-d", "refs/bench/tip", cwd=origin)
    if refs_of(origin) != release:
        raise BenchError("origin's refs after the chain differ from the repository's")
    chain_list, chain_pub = list_oid(origin), out
    single = publish(origin, store_root / "cold-base", f"{url}/cold-base", "--max-chain", "0")
    base_list = list_oid(origin)
    chain_bytes = sum(e["size"] for e in chain_pub["chain"])
    log(f"cold checkouts: chain of {chain_pub['chain_length']} increments ({chain_bytes} "
        f"bytes) vs one base ({single['bundle']['size']} bytes); base of the chain {first['bundle']['size']} bytes")

    daemon, port = start_daemon(srv, run_dir / "logs")
    results: dict[str, list[dict]] = {"chain": [], "base": []}
    try:
        with CountingProxy(("127.0.0.1", port)) as proxy:
            origin_url = f"git://127.0.0.1:{proxy.port}/cold.git"
            for i in range(runs):
                for kind, oid in (("chain", chain_list), ("base", base_list)):
                    set_list(origin, oid)
                    dest = run_dir / "clones" / f"{kind}-{i}"
                    t = time.monotonic()
                    argv = [sys.executable, "-m", "mirrorci", "checkout", origin_url, "--path", str(dest), "--json"]
                    proc = subprocess.run(argv, env=git_env(), capture_output=True, text=True)
                    seconds = time.monotonic() - t
                    if proc.returncode != 0:
                        raise BenchError(f"mirrorci checkout failed:\n{proc.stderr[-3000:]}")
                    got = json.loads(proc.stdout)
                    if got.get("method") != "http" or got.get("final_fetch"):
                        log(f"WARNING: {kind} checkout used {got.get('method')}, final fetch {got.get('final_fetch')}: "
                            f"{got.get('fallbacks')}")
                    results[kind].append({"seconds": round(seconds, 3), "method": got.get("method"),
                                          "apply_path": got.get("apply_path"), "final_fetch": got.get("final_fetch"),
                                          "bytes_from_mirror": got.get("bytes_from_mirror"),
                                          "bytes_from_origin": got.get("bytes_from_origin")})
                    delete_tree(dest, run_dir)
                    log(f"  {kind} round {i + 1}: {seconds:.2f} s via {got.get('method')} ({got.get('apply_path')})")
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
    chain_med = median([r["seconds"] for r in results["chain"]])
    base_med = median([r["seconds"] for r in results["base"]])
    return {"length": length, "chain_median": chain_med, "base_median": base_med,
            "ratio": round(chain_med / base_med, 3), "raw": results,
            "chain_bytes": sum(e["size"] for e in chain_pub["chain"]), "base_bytes": single["bundle"]["size"]}


# ---------------------------------------------------------------------------- report

def table(report: dict) -> str:
    p, g = report["publish"], report["store"]
    mb = 1e6
    lines = [
        f"chain benchmark: {report['repository']}; {report['machine']}",
        f"publish one increment ({p['behind']} commits, {p['increment_bytes'] / mb:.2f} MB): "
        f"{p['increment_median']:.2f} s; a new base ({p['base_bytes'] / mb:.1f} MB): {p['base_median']:.2f} s; "
        f"ratio {p['ratio']:.3f} (target <= {TARGET_PUBLISH}) {'OK' if p['ratio'] <= TARGET_PUBLISH else 'MISSED'}",
        f"store after {g['publishes']} publishes (--grace 0): {g['final_store_bytes'] / mb:.1f} MB in "
        f"{g['final_store_files']} files (chain {g['final_chain_bytes'] / mb:.1f} MB; most at any point "
        f"{g['max_store_bytes'] / mb:.1f} MB); without retention {g['written_bytes'] / mb:.1f} MB",
        "  kinds: " + " ".join(f"{r['published'][0]}{r['chain_length']}" for r in g["rows"]),
    ]
    c = report.get("cold")
    if c:
        lines.append(f"cold checkout, chain of {c['length']} ({c['chain_bytes'] / mb:.1f} MB): "
                     f"{c['chain_median']:.2f} s; single base ({c['base_bytes'] / mb:.1f} MB): "
                     f"{c['base_median']:.2f} s; ratio {c['ratio']:.3f} "
                     f"(target <= {TARGET_COLD}) {'OK' if c['ratio'] <= TARGET_COLD else 'MISSED'}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(repogen.PRESETS), default="gitlike")
    ap.add_argument("--repo", type=Path, help="an existing repository instead of a generated one")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--behind", type=int, default=10, help="commits in the timed increment (default 10)")
    ap.add_argument("--publishes", type=int, default=20)
    ap.add_argument("--chain", type=int, default=8, help="increments in the cold-checkout chain (default 8)")
    ap.add_argument("--no-checkout", action="store_true", help="publishing side only")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = (args.workdir or default_workdir()).absolute()
    run_dir = workdir / "chain"
    workdir.mkdir(parents=True, exist_ok=True)
    delete_tree(run_dir, workdir)
    for d in ("srv", "store", "clones", "logs"):
        (run_dir / d).mkdir(parents=True)
    if args.repo:
        source, description = args.repo.absolute(), f"--repo {args.repo.name}"
    else:
        source, _ = repogen.ensure_repo(args.size, workdir / "repos")
        description = f"generated '{args.size}' repository ({source.name})"
    report: dict = {"repository": description,
                    "machine": f"{os.cpu_count()} CPUs, {git('--version')}, Python {platform.python_version()}"}
    with StoreServer(run_dir / "store") as store:
        report["publish"] = publish_timing(source, run_dir, run_dir / "store", store.url, args.behind, args.runs)
        report["store"] = store_growth(source, run_dir, run_dir / "store", store.url, args.publishes)
        if not args.no_checkout:
            report["cold"] = cold_checkouts(source, run_dir, run_dir / "store", store.url, args.chain, args.runs)
    finish(report, table(report), workdir / "last-chain-result.json", args.json, run_dir / "clones", workdir)
    return 0


if __name__ == "__main__":
    run_main(main)
