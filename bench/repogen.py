"""Deterministic synthetic repositories for the benchmark, built with `git fast-import`.

The source tree is pseudo-random "code" drawn from a seeded vocabulary: varied
enough that zlib only halves it, regular enough that successive versions of a
file delta well. History is a few thousand commits on `main` (each modifying,
adding and sometimes deleting a handful of files, with a "hot" set of files
edited over and over so delta chains get long), feature branches that fork and
merge back, long-lived release branches, and annotated and lightweight tags.

Same parameters, same seed: same object ids, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

GENERATOR_VERSION = 1
EPOCH = 1_600_000_000
IDENTITY = "Bench Generator <bench@example.invalid>"


@dataclass(frozen=True)
class Preset:
    files: int            # files in the first commit
    commits: int          # commits after the first one (all branches together)
    mods: int             # files modified per commit (on average)
    adds: int             # files added per commit (on average)
    hot: int              # files that get most of the modifications
    mean_size: int        # typical file size in bytes (log-normal around it)
    seed: int = 20240601


PRESETS = {
    # ~10 MB pack: for debugging the benchmark itself.
    "small": Preset(files=3_000, commits=600, mods=10, adds=2, hot=300, mean_size=3_000),
    # >= 100 MB pack, >= 300k objects: index-pack dominates a plain clone.
    "large": Preset(files=34_000, commits=4_400, mods=24, adds=3, hot=2_500, mean_size=4_500),
    # git.git's shape: a few thousand files, a long history (most objects are old versions).
    "gitlike": Preset(files=4_000, commits=14_000, mods=12, adds=0, hot=600, mean_size=16_000),
}

_SYLLABLES = ["ba", "ce", "di", "fo", "gu", "ka", "le", "mi", "no", "pu", "ra", "se", "ti", "vo", "xu",
              "za", "que", "str", "an", "el", "or", "um", "ix", "ty", "ph", "sh", "ch", "tr", "io", "en"]


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def git_env() -> dict[str, str]:
    """Git isolated from the user's and the system's configuration."""
    env = dict(os.environ)
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
                "LC_ALL": "C"})
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        env.pop(var, None)
    return env


def git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=git_env())
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace").strip()


class Code:
    """Pseudo-random source code from a seeded vocabulary."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = {"".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(6000)}
        self.words = sorted(words)

    def ident(self) -> str:
        r, w = self.rng.random(), self.words
        if r < 0.6:
            return self.rng.choice(w)
        if r < 0.9:
            return f"{self.rng.choice(w)}_{self.rng.choice(w)}"
        return self.rng.choice(w).capitalize() + self.rng.choice(w).capitalize()

    def phrase(self, lo: int, hi: int) -> str:
        return " ".join(self.rng.choice(self.words) for _ in range(self.rng.randint(lo, hi)))

    def line(self) -> str:
        r = self.rng
        if r.random() < 0.08:
            return f"\ndef {self.ident()}({', '.join(self.ident() for _ in range(r.randint(0, 4)))}):"
        pad = "    " * r.randint(1, 3)
        k = r.random()
        if k < 0.35:
            return f"{pad}{self.ident()} = {self.ident()}.{self.ident()}({self.ident()}, {r.randint(0, 99999)})"
        if k < 0.50:
            return f"{pad}if {self.ident()} {r.choice(['<', '>', '==', '!='])} {self.ident()}:"
        if k < 0.65:
            return f"{pad}# {self.phrase(3, 10)}"
        if k < 0.75:
            return f"{pad}return {self.ident()}({self.ident()}) + 0x{r.getrandbits(32):08x}"
        if k < 0.85:
            return f"{pad}{self.ident()}.{self.ident()}.append({self.ident()}[{r.randint(0, 64)}])"
        return f'{pad}raise {self.ident().capitalize()}Error("{self.phrase(2, 6)}")'

    def lines(self, size: int) -> list[str]:
        out, n = [], 0
        while n < size:
            line = self.line()
            out.append(line)
            n += len(line) + 1
        return out

    def file(self, mean_size: int) -> bytes:
        size = max(200, int(self.rng.lognormvariate(0, 0.6) * mean_size))
        return ("\n".join(self.lines(size)) + "\n").encode()

    def edit(self, content: bytes) -> bytes:
        """A small change: a few lines replaced, inserted or deleted."""
        r = self.rng
        lines = content.decode().split("\n")
        for _ in range(r.randint(1, 3)):
            at = r.randrange(len(lines))
            k = r.random()
            if k < 0.45:
                lines[at] = self.line()
            elif k < 0.80 or len(lines) < 20:
                lines[at:at] = self.lines(r.randint(30, 300))
            else:
                del lines[at:at + r.randint(1, 6)]
        return "\n".join(lines).encode()


class FastImport:
    """Writes a fast-import stream with marks and a ticking clock."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.out = stream
        self.mark = 0
        self.clock = EPOCH

    def _data(self, data: bytes) -> None:
        self.out.write(b"data %d\n" % len(data))
        self.out.write(data)
        self.out.write(b"\n")

    def commit(self, ref: str, message: str, changes: dict[str, bytes | None],
               parent: int | None = None, merge: int | None = None) -> int:
        self.mark += 1
        self.clock += 600
        w = self.out.write
        w(f"commit {ref}\nmark :{self.mark}\n".encode())
        w(f"author {IDENTITY} {self.clock} +0000\ncommitter {IDENTITY} {self.clock} +0000\n".encode())
        self._data(message.encode())
        if parent is not None:
            w(f"from :{parent}\n".encode())
        if merge is not None:
            w(f"merge :{merge}\n".encode())
        for path in sorted(changes):
            content = changes[path]
            if content is None:
                w(f"D {path}\n".encode())
            else:
                w(f"M 100644 inline {path}\n".encode())
                self._data(content)
        return self.mark

    def tag(self, name: str, mark: int, message: str) -> None:
        self.clock += 60
        self.out.write(f"tag {name}\nfrom :{mark}\ntagger {IDENTITY} {self.clock} +0000\n".encode())
        self._data(message.encode())

    def lightweight(self, ref: str, mark: int) -> None:
        self.out.write(f"reset {ref}\nfrom :{mark}\n\n".encode())


class Branch:
    def __init__(self, ref: str, state: dict[str, bytes], tip: int | None) -> None:
        self.ref = ref
        self.state = state
        self.tip = tip
        self.changed: set[str] = set()
        self.fresh = True  # next commit needs an explicit `from`
        self._paths: list[str] | None = None

    def paths(self) -> list[str]:
        """The branch's files in a deterministic order (rebuilt only after deletions)."""
        if self._paths is None:
            self._paths = sorted(self.state)
        return self._paths

    def apply(self, changes: dict[str, bytes | None]) -> None:
        for path, content in changes.items():
            if content is None:
                if self.state.pop(path, None) is not None:
                    self._paths = None
            else:
                if path not in self.state and self._paths is not None:
                    self._paths.append(path)
                self.state[path] = content


def generate_stream(p: Preset, fi: FastImport) -> tuple[dict[str, int], list[str]]:
    rng = random.Random(p.seed)
    code = Code(rng)
    top = [f"{w}" for w in rng.sample(code.words, max(4, int((p.files / 80) ** 0.5)))]
    leaves = [f"{t}/{s}" for t in top for s in rng.sample(code.words, max(4, int((p.files / 80) ** 0.5)))]
    used: set[str] = set()

    def new_path() -> str:
        while True:
            path = f"{rng.choice(leaves)}/{rng.choice(code.words)}_{rng.choice(code.words)}.py"
            if path not in used:
                used.add(path)
                return path

    state = {new_path(): code.file(p.mean_size) for _ in range(p.files)}
    main = Branch("refs/heads/main", state, None)
    main.tip = fi.commit(main.ref, "Initial import\n", dict(state))
    main.fresh = False
    hot = rng.sample(sorted(state), min(p.hot, len(state)))

    releases: list[Branch] = []
    features: list[Branch] = []
    counts = {"commits": 1, "merges": 0, "tags": 0, "feature_branches": 0}
    deleted: list[str] = []

    def work(b: Branch, message: str) -> None:
        changes: dict[str, bytes | None] = {}
        paths = b.paths()
        for _ in range(max(1, int(rng.gauss(p.mods, p.mods / 3)))):
            path = rng.choice(hot) if rng.random() < 0.7 else rng.choice(paths)
            if path in b.state:
                changes[path] = code.edit(changes.get(path) or b.state[path])  # type: ignore[arg-type]
        for _ in range(rng.randint(0, 2 * p.adds)):
            changes[new_path()] = code.file(p.mean_size)
        if rng.random() < 0.1:
            victim = rng.choice(paths)
            if victim not in hot:
                changes[victim] = None
        b.apply(changes)
        b.changed.update(changes)
        b.tip = fi.commit(b.ref, message, changes, parent=b.tip if b.fresh else None)
        b.fresh = False
        counts["commits"] += 1

    n = 1
    while n <= p.commits:
        r = rng.random()
        if features and (r < 0.15 or len(features) > 3):
            b = rng.choice(features)
            work(b, f"{b.ref.rsplit('/', 1)[-1]}: {code.phrase(3, 8)}\n")
            if len(b.changed) > rng.randint(20, 120):  # done: merge it into main
                features.remove(b)
                changes = {path: b.state.get(path) for path in sorted(b.changed)}
                main.apply(changes)
                main.tip = fi.commit(main.ref, f"Merge {b.ref.rsplit('/', 1)[-1]}\n", changes, merge=b.tip)
                counts["commits"] += 1
                counts["merges"] += 1
                if rng.random() < 0.75:  # most merged branches are deleted afterwards
                    deleted.append(b.ref)
        elif releases and r < 0.22:
            b = rng.choice(releases)
            work(b, f"backport: {code.phrase(3, 8)}\n")
        else:
            work(main, f"{code.phrase(4, 12)}\n")
        if rng.random() < 0.01:
            counts["feature_branches"] += 1
            name = f"feature-{counts['feature_branches']}-{rng.choice(code.words)}"
            features.append(Branch(f"refs/heads/{name}", dict(main.state), main.tip))
        n += 1
        if n % max(1, p.commits // 12) == 0:
            counts["tags"] += 1
            version = f"v1.{counts['tags']}.0"
            fi.tag(version, main.tip, f"Release {version}\n\n{code.phrase(10, 30)}\n")  # type: ignore[arg-type]
            if counts["tags"] % 3 == 0:
                releases.append(Branch(f"refs/heads/release/1.{counts['tags']}", dict(main.state), main.tip))
            for rb in releases:
                if rb.tip is not None and not rb.fresh:
                    fi.lightweight(f"refs/tags/{rb.ref.rsplit('/', 1)[-1]}-snapshot-{n}", rb.tip)
        if n % 200 == 0:
            log(f"  generated {n}/{p.commits} commits")
    fi.out.write(b"done\n")
    return counts, deleted


def pack_stats(git_dir: Path) -> dict[str, int | float]:
    """Pack bytes, object counts by kind, and delta-chain depths."""
    packs = list((git_dir / "objects" / "pack").glob("pack-*.pack"))
    out = git("cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype) %(deltabase)",
              cwd=git_dir)
    base: dict[str, str] = {}
    kinds: dict[str, int] = {}
    zero = "0" * 40
    for line in out.splitlines():
        oid, kind, delta = line.split(" ")
        kinds[kind] = kinds.get(kind, 0) + 1
        if delta != zero and len(delta) == len(oid) and set(delta) != {"0"}:
            base[oid] = delta
    depth: dict[str, int] = {}

    def depth_of(oid: str) -> int:
        chain = []
        while oid in base and oid not in depth:
            chain.append(oid)
            oid = base[oid]
        d = depth.get(oid, 0)
        for o in reversed(chain):
            d += 1
            depth[o] = d
        return d

    for oid in base:
        depth_of(oid)
    depths = list(depth.values())
    return {
        "pack_bytes": sum(p.stat().st_size for p in packs),
        "packs": len(packs),
        "objects": sum(kinds.values()),
        "commits": kinds.get("commit", 0),
        "trees": kinds.get("tree", 0),
        "blobs": kinds.get("blob", 0),
        "tags": kinds.get("tag", 0),
        "deltas": len(depths),
        "max_delta_depth": max(depths, default=0),
        "mean_delta_depth": round(sum(depths) / len(depths), 1) if depths else 0.0,
        "bitmap": any(p.with_suffix(".bitmap").exists() for p in packs),
    }


def cache_key(name: str, p: Preset) -> str:
    blob = json.dumps({"v": GENERATOR_VERSION, **asdict(p)}, sort_keys=True).encode()
    return f"{name}-{hashlib.sha256(blob).hexdigest()[:12]}"


def ensure_repo(name: str, cache_dir: Path) -> tuple[Path, dict]:
    """The generated bare repository for a preset, built once and reused."""
    p = PRESETS[name]
    key = cache_key(name, p)
    repo = cache_dir / f"{key}.git"
    meta_path = cache_dir / f"{key}.json"
    if repo.is_dir() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        meta["cached"] = True
        log(f"reusing generated repository {repo.name} ({meta['stats']['pack_bytes'] / 1e6:.1f} MB pack)")
        return repo, meta
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{key}.tmp.git"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"generating the '{name}' repository ({p.files} files, {p.commits} commits); reruns reuse it")
    started = time.monotonic()
    git("init", "--quiet", "--bare", "--initial-branch=main", str(tmp))
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--depth=50", "--active-branches=20"],
                            cwd=tmp, stdin=subprocess.PIPE, env=git_env())
    assert proc.stdin is not None
    try:
        counts, deleted = generate_stream(p, FastImport(proc.stdin))
        proc.stdin.close()
    except BrokenPipeError:
        proc.wait()
        raise RuntimeError("git fast-import stopped reading its input (see its message above)") from None
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed (see its message above)")
    imported = time.monotonic()
    log(f"  fast-import done in {imported - started:.0f} s; dropping merged branches")
    if deleted:
        git("update-ref", "--stdin", cwd=tmp, input="".join(f"delete {r}\n" for r in deleted).encode())
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=tmp)
    log("  repacking (git repack -adfb --depth=50 --window=10): the slow part")
    subprocess.run(["git", "-c", "pack.threads=0", "repack", "-adfbq", "--depth=50", "--window=10"],
                   cwd=tmp, env=git_env(), check=True)
    git("prune", "--expire=now", cwd=tmp)
    repacked = time.monotonic()
    stats = pack_stats(tmp)
    meta = {
        "preset": name, "parameters": asdict(p), "generator_version": GENERATOR_VERSION,
        "history": counts, "stats": stats,
        "generation_seconds": round(repacked - started, 1),
        "fast_import_seconds": round(imported - started, 1),
        "repack_seconds": round(repacked - imported, 1),
        "refs": len(git("for-each-ref", "--format=%(refname)", cwd=tmp).split()),
    }
    shutil.rmtree(repo, ignore_errors=True)
    os.replace(tmp, repo)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    meta["cached"] = False
    log(f"  generated in {meta['generation_seconds']} s: {stats['pack_bytes'] / 1e6:.1f} MB pack, "
        f"{stats['objects']} objects, max delta depth {stats['max_delta_depth']}")
    return repo, meta
