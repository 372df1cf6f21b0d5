"""What every attack test asserts, and the tools to stage an attack on origin's mirror refs.

The invariant: whatever `refs/mirrors/*` and the mirror hosts hold, `mirrorci checkout`
exits 0 with a clone equal to `git clone`'s (refs, HEAD, index, work tree bytes, and a
strict fsck with nothing missing, broken or mismatched), recording why a mirror was
not used; or it exits non-zero with one clear error line and claims nothing. Never a
hang, never a Python traceback.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mirrorci.mirrorlist import REF_BUNDLE_HTTP, BundleEntry, BundleList
from tests.support import forge
from tests.support.cli import CliResult, cli_env
from tests.support.hostile_server import HostileServer
from tests.support.repos import git

# Small limits, so that a hostile mirror costs seconds; the subprocess bound is generous
# and only there to turn a hang into a failure instead of a stuck suite.
LIMITS = ("--timeout", "5", "--stall-timeout", "2")
HANG_BOUND = 60.0
FSCK_PROBLEMS = ("hash mismatch", "broken link", "missing", "corrupt", "error")


def checkout_cmd(url: str, path: Path, *extra: str | Path) -> list[str]:
    return [sys.executable, "-m", "mirrorci", "checkout", url, "--path", str(path), "--json", *LIMITS, *map(str, extra)]


def run_checkout(url: str, path: Path, *extra: str | Path, env: dict[str, str] | None = None,
                 bound: float = HANG_BOUND) -> CliResult:
    """The real CLI in its own process group; a run past ``bound`` seconds is a hang and fails the test."""
    proc = subprocess.Popen(checkout_cmd(url, path, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(env), start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(f"mirrorci checkout hung: still running after {bound:g} s\n{stderr[-3000:]}")
    outcome = CliResult(proc.returncode, stdout, stderr)
    assert "Traceback (most recent call last)" not in stderr, stderr
    return outcome


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group a test started (never anything else)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def checkout_ok(url: str, path: Path, *extra: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A checkout that must exit 0; its JSON summary."""
    outcome = run_checkout(url, path, *extra, env=env)
    assert outcome.code == 0, f"exit {outcome.code}, expected 0 (a fallback, not a failure)\n{outcome.stderr[-3000:]}"
    return outcome.json


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error:", "::error::"))]


def assert_failed_cleanly(outcome: CliResult, path: Path, existed: bool = False) -> None:
    """A refusal: non-zero exit, one error line, no Python traceback, nothing left at --path."""
    assert outcome.code != 0, "checkout succeeded where it must refuse"
    assert len(error_lines(outcome.stderr)) == 1, outcome.stderr
    if existed:
        assert path.is_dir() and not any(path.iterdir()), sorted(p.name for p in path.iterdir())
    else:
        assert not path.exists(), f"{path} left behind by a failed checkout"


def assert_mirror_not_used(result: dict[str, Any], method: str = "http") -> None:
    """The attacked mirror did not provide the objects, and the summary says why."""
    assert result["method"] != method, result
    assert result["fallbacks"], f"no fallback recorded: {result}"
    for fallback in result["fallbacks"]:
        assert isinstance(fallback.get("method"), str) and fallback.get("reason", "").strip(), result["fallbacks"]


def assert_accounted(result: dict[str, Any]) -> None:
    """A checkout that ended on origin alone says why, with a reason for each mirror it did not use."""
    if result["method"] == "origin":
        assert result["fallbacks"], f"no fallback recorded: {result}"
    for fallback in result["fallbacks"]:
        assert isinstance(fallback.get("method"), str) and fallback.get("reason", "").strip(), result["fallbacks"]


def run_git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """git without the user's config, never prompting; the caller reads the return code."""
    full = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    return subprocess.run(["git", *args], cwd=cwd, env=full, capture_output=True, text=True)


def _tree_files(root: Path) -> dict[str, tuple[str, str]]:
    """Every path of a work tree (outside .git): symlink target, or exec bit and sha256 of the bytes."""
    files: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                files[rel] = ("link", os.readlink(p))
            else:
                files[rel] = ("x" if os.access(p, os.X_OK) else "-", hashlib.sha256(p.read_bytes()).hexdigest())
    return files


def clone_state(repo: Path) -> dict[str, Any]:
    """What a user of a clone sees: refs, HEAD, index, work tree, history."""
    def out(*args: str) -> str:
        proc = run_git(repo, *args)
        return proc.stdout.strip() if proc.returncode == 0 else f"<git {args[0]} failed: {proc.stderr.strip()}>"

    return {
        "refs": out("for-each-ref", "--format=%(refname) %(objectname)", "refs/remotes/origin", "refs/tags"),
        "head": out("rev-parse", "HEAD"),
        "head_ref": run_git(repo, "symbolic-ref", "-q", "HEAD").stdout.strip() or None,
        "index": out("-c", "core.quotepath=off", "ls-files", "-s"),
        "files": _tree_files(repo),
        "history": out("rev-list", "--count", "--objects", "--remotes=origin", "--tags"),
        "log": out("log", "--format=%H %T %P", "HEAD"),
    }


# What `git clone` leaves depends only on what origin advertises (ids name content),
# and most tests clone the same sample: remember each answer by origin's advertisement.
_CLONE_STATES: dict[tuple[str, str | None], dict[str, Any]] = {}


def git_clone_state(origin_url: str, ref: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`clone_state` of `git clone origin_url` (then `git checkout ref`)."""
    listing = run_git(Path.cwd(), "ls-remote", "--symref", origin_url, "HEAD", "refs/heads/*", "refs/tags/*", env=env)
    assert listing.returncode == 0, listing.stderr
    key = (listing.stdout, ref)
    if key not in _CLONE_STATES:
        with tempfile.TemporaryDirectory(prefix="git-clone-") as tmp:
            theirs = Path(tmp) / "clone"
            proc = run_git(Path(tmp), "clone", "-q", origin_url, str(theirs), env=env)
            assert proc.returncode == 0, proc.stderr
            if ref:
                proc = run_git(theirs, "checkout", "-q", ref)
                assert proc.returncode == 0, proc.stderr
            _CLONE_STATES[key] = clone_state(theirs)
    return _CLONE_STATES[key]


def assert_equals_git_clone(origin_url: str, path: Path, *, ref: str | None = None,
                            env: dict[str, str] | None = None) -> None:
    """``path`` is what `git clone origin_url` (then `git checkout ref`) gives, and every object in it is sound."""
    path = Path(path)
    expected = git_clone_state(origin_url, ref, env)
    ours = clone_state(path)
    for key in expected:
        assert ours[key] == expected[key], f"{key} differs from git clone's:\n{_diff(expected[key], ours[key])}"
    fsck = run_git(path, "fsck", "--strict", "--no-dangling")
    report = fsck.stdout + fsck.stderr
    assert fsck.returncode == 0 and not any(p in report for p in FSCK_PROBLEMS), report
    status = run_git(path, "status", "--porcelain", "--untracked-files=all")
    assert status.returncode == 0 and status.stdout == "", status.stdout + status.stderr
    assert run_git(path, "for-each-ref", "refs/mirrors/", "refs/mirrorci/").stdout == ""
    assert leftovers(path) == []


def _diff(expected: Any, ours: Any) -> str:
    """The first lines of a diff, git clone's side first."""
    def lines(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [f"{k} {v}" for k, v in sorted(value.items())]
        return str(value).splitlines()

    diff = difflib.unified_diff(lines(expected), lines(ours), "git clone", "mirrorci", lineterm="")
    return "\n".join(list(diff)[:40])


def leftovers(root: Path) -> list[str]:
    """Temporary files of an interrupted or failed download anywhere under ``root``."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*tmp_mirrorci_*"))


# ---------------------------------------------------------------------------
# Staging an attack: blobs under refs/mirrors/* on origin, bytes on the hostile host


def set_mirror_blob(origin: Path, ref: str, content: str | bytes) -> str:
    """Point ``ref`` on the bare ``origin`` at a blob holding ``content`` (what a writer of refs/mirrors/* can do)."""
    data = content.encode() if isinstance(content, str) else content
    oid = forge.out(origin, "hash-object", "-w", "--stdin", input=data)
    git(origin, "update-ref", ref, oid)
    return oid


def entry_for(server: HostileServer, name: str, bundle: bytes, idx: bytes | None, **overrides: Any) -> BundleEntry:
    """Serve ``bundle`` (and ``idx``) at ``/<name>.bundle`` (``.idx``); their list entry, real sha256 and sizes."""
    header, pack = forge.split_bundle(bundle) if b"\n\n" in bundle else (b"", bundle)
    entry = BundleEntry(
        id=name, uri=server.serve(f"/{name}.bundle", bundle), creation_token=int(time.time()),
        sha256=hashlib.sha256(bundle).hexdigest(), size=len(bundle),
        pack_checksum=pack[-forge.HASH_LEN:].hex(), header_size=len(header),
    )
    if idx is not None:
        entry = replace(entry, idx_uri=server.serve(f"/{name}.idx", idx), idx_sha256=hashlib.sha256(idx).hexdigest(),
                        idx_size=len(idx))
    return replace(entry, **overrides)


def publish_list(origin: Path, *entries: BundleEntry) -> str:
    """Write refs/mirrors/bundle/http on origin as `mirrorci publish` would render it."""
    return set_mirror_blob(origin, REF_BUNDLE_HTTP, BundleList(bundles=list(entries)).render())


def publish_bundle(origin: Path, server: HostileServer, bundle: bytes, idx: bytes | None, name: str = "b",
                   **overrides: Any) -> BundleEntry:
    entry = entry_for(server, name, bundle, idx, **overrides)
    publish_list(origin, entry)
    return entry


@dataclass
class Legit:
    """Origin's honest bundle and the `.idx` of its pack."""

    bundle: bytes
    idx: bytes

    @property
    def header(self) -> bytes:
        return forge.split_bundle(self.bundle)[0]

    @property
    def pack(self) -> bytes:
        return forge.split_bundle(self.bundle)[1]


def legit_bundle(origin: Path, workdir: Path) -> Legit:
    workdir.mkdir(parents=True, exist_ok=True)
    data = forge.legit_bundle(origin, workdir / "legit.bundle")
    idx = forge.index_of(origin, forge.split_bundle(data)[1], workdir / "index")
    return Legit(data, idx)

