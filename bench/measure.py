"""Run one command and measure it: wall time, peak memory of its process tree.

Peak memory comes from two sources:
- `os.wait4` on the command, in launch.py: `ru_maxrss` is the largest peak RSS
  of any process in the tree (the command and every descendant it waited for).
  A child started with vfork/exec inherits its parent's RSS at spawn as a floor,
  so this number is max(parent, children), never a sum; launch.py keeps the
  benchmark's own RSS out of it.
- A sampler thread that walks the tree in /proc every few milliseconds and keeps,
  per process, its `VmHWM` (peak RSS of that process image) and, for the tree,
  the largest sum of `VmRSS` seen at one instant (what the machine had to hold).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_INTERVAL = 0.02


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        kids += [int(x) for x in _read(f"/proc/{pid}/task/{tid}/children").split()]
    return kids


def _status_kb(pid: int) -> tuple[int, int, int]:
    """VmHWM (peak RSS), VmRSS and RssAnon (RSS minus file-backed pages such as a mapped pack)."""
    hwm = rss = anon = 0
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("RssAnon:"):
            anon = int(line.split()[1])
    return hwm, rss, anon


def label(argv: list[str]) -> str:
    """A short name for a process: `git index-pack`, `python mirrorci`, ..."""
    if not argv:
        return "?"
    prog = os.path.basename(argv[0])
    if prog.startswith("git") and prog != "git":
        return prog.replace("git-", "git ", 1)
    if prog == "git":
        rest = argv[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-c", "-C") else rest[1:]
        return f"git {rest[0]}" if rest else "git"
    if prog.startswith("python"):
        return "python (mirrorci)" if any("mirrorci" in a or "wrap_mirrorci" in a for a in argv) else "python"
    return prog


@dataclass
class TreePeaks:
    # (pid, label) -> (label, VmHWM, RssAnon max) in kB; keyed by label too, as exec changes it
    per_process: dict[tuple[int, str], tuple[str, int, int]] = field(default_factory=dict)
    tree_rss_kb: int = 0  # largest sum of VmRSS over the tree at one sample

    def largest(self, prefix: str) -> tuple[str, int, int]:
        best = ("", 0, 0)
        for name, kb, anon in self.per_process.values():
            if name.startswith(prefix) and kb > best[1]:
                best = (name, kb, anon)
        return best

    def by_label(self) -> dict[str, dict[str, float]]:
        """Per kind of process: peak RSS and peak anonymous RSS in MB (max over its instances)."""
        out: dict[str, dict[str, float]] = {}
        for name, kb, anon in self.per_process.values():
            cur = out.setdefault(name, {"peak_mb": 0.0, "anon_peak_mb": 0.0, "count": 0})
            cur["peak_mb"] = max(cur["peak_mb"], round(kb / 1024, 1))
            cur["anon_peak_mb"] = max(cur["anon_peak_mb"], round(anon / 1024, 1))
            cur["count"] += 1
        return out


class Sampler:
    def __init__(self, root: int, include_root: bool = True) -> None:
        self.root = root
        self.include_root = include_root
        self.peaks = TreePeaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> TreePeaks:
        self._stop.set()
        self._thread.join()
        return self.peaks

    def _loop(self) -> None:
        while not self._stop.is_set():
            pending = [self.root] if self.include_root else _children(self.root)
            total = 0
            while pending:
                pid = pending.pop()
                argv = [a for a in _read(f"/proc/{pid}/cmdline").split("\0") if a]
                hwm, rss, anon = _status_kb(pid)
                if hwm and argv:
                    total += rss
                    name = label(argv)
                    _, old_hwm, old_anon = self.peaks.per_process.get((pid, name), (name, 0, 0))
                    self.peaks.per_process[(pid, name)] = (name, max(old_hwm, hwm), max(old_anon, anon))
                pending += _children(pid)
            self.peaks.tree_rss_kb = max(self.peaks.tree_rss_kb, total)
            self._stop.wait(SAMPLE_INTERVAL)


@dataclass
class Measured:
    argv: list[str]
    returncode: int
    seconds: float
    maxrss_kb: int          # wait4: the largest peak RSS of any process in the tree
    peaks: TreePeaks
    stdout: str
    stderr: str


def run(argv: list[str], env: dict[str, str], cwd: Path, log_prefix: Path) -> Measured:
    """Run `argv` (through launch.py) with stdout/stderr to `<log_prefix>.out/.err`; measure it."""
    out_path = log_prefix.with_suffix(".out")
    err_path = log_prefix.with_suffix(".err")
    result_path = log_prefix.with_suffix(".launch.json")
    launcher = [sys.executable, str(Path(__file__).resolve().parent / "launch.py"), str(result_path)]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(launcher + argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        sampler = Sampler(proc.pid, include_root=False).start()
        proc.wait()
        peaks = sampler.stop()
    try:
        launched = json.loads(result_path.read_text())
    except (OSError, ValueError):
        launched = {"seconds": float("nan"), "maxrss_kb": 0, "exit_code": proc.returncode}
    return Measured(argv, launched["exit_code"], launched["seconds"], launched["maxrss_kb"], peaks,
                    out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))
