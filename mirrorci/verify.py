"""Check that the objects a checkout relies on are what their ids say.

A pack installed with the publisher's `.idx` (the fast path) was never hashed:
the index maps ids to offsets, and a forged index can make any bytes answer to a
reviewed commit's tree or blob ids. Git itself does not rehash objects it reads
from a pack, so this module does, by streaming them through `git cat-file --batch`
and hashing `<type> <size>\\0<content>` as git would:

- "relied-on" (the default): every commit and tag reachable from the refs the
  clone ends with, walked once by `rev-list` (which fails on a missing parent, so
  the history is connected down to its roots), plus every tree and blob of the
  checked-out commit (of the paths a sparse checkout writes). Trees and blobs of
  older commits are not hashed.
- "all" (`--verify full` with objects borrowed from the runner cache): every
  object reachable from those refs.
- "connected" (`--verify full` when every pack in the clone was indexed by git,
  which hashes every object as it indexes): only that every object reachable from
  those refs is present, as `git clone` checks.

Both walks run at once (and beside the work tree's checkout), one `cat-file`
each, so the cost is about that of reading the objects once.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from .errors import SourceFailed
from .gitcmd import Git

SCOPES = ("relied-on", "all", "connected")
CHUNK = 1 << 20
# Objects must be read as stored: no replacement objects, no commit-graph shortcuts.
# Bounded pack windows and delta cache, as for the work tree: a large pack must not balloon memory.
_CONFIG = ("core.commitGraph=false", "core.packedGitWindowSize=16m", "core.packedGitLimit=64m",
           "core.deltaBaseCacheLimit=32m")
_ENV = {"GIT_NO_REPLACE_OBJECTS": "1"}


class VerificationFailed(SourceFailed):
    """An object is missing, unreadable, or does not hash to its id."""

    def __init__(self, reason: str, oid: str | None = None) -> None:
        super().__init__(reason)
        self.oid = oid


@dataclass
class Verified:
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0


def walks(tips: Iterable[str], commit: str | None, scope: str, paths: list[str] | None = None) -> list[list[str]]:
    """The rev-list invocations whose objects together make up the scope.

    `paths`: pathspecs limiting the checked-out commit's trees and blobs to those a sparse
    checkout writes (the others are never read, like old commits' trees and blobs).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown verification scope {scope!r}")
    base = ["rev-list", "--objects", "--no-object-names", "--stdin"]
    if scope in ("all", "connected"):
        return [base]
    runs = [[*base, "--filter=tree:0"]]  # commits and tags (and what tags point at directly)
    if commit:
        limit = ["--", *paths] if paths else []
        runs.append(["rev-list", "--objects", "--no-object-names", "--no-walk", commit, *limit])
    return runs


def verify(
    git: Git, tips: Iterable[str], commit: str | None, scope: str = "relied-on", paths: list[str] | None = None,
) -> Verified:
    """Hash every object in the scope; raise VerificationFailed on the first that is wrong."""
    started = time.monotonic()
    tip_list = sorted(set(tips))
    if scope == "connected":
        return _connected(git, tip_list, started)
    runs = walks(tip_list, commit, scope, paths)
    hex_len = len(commit or (tip_list[0] if tip_list else "0" * 40))
    results: list[Verified] = []
    errors: list[BaseException] = []
    procs: list[subprocess.Popen[bytes]] = []
    lock = threading.Lock()

    def one(args: list[str]) -> None:
        try:
            found = _walk_and_hash(git.with_env(_ENV), args, tip_list, hex_len, procs, lock)
            with lock:
                results.append(found)
        except BaseException as exc:  # reported below, in the caller's thread
            with lock:
                errors.append(exc)
                for proc in procs:  # the other walk has no reason to go on
                    if proc.poll() is None:
                        proc.kill()

    threads = [threading.Thread(target=one, args=(args,), daemon=True) for args in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        failed = [e for e in errors if isinstance(e, VerificationFailed)]
        raise failed[0] if failed else errors[0]
    return Verified(sum(r.objects for r in results), sum(r.bytes for r in results), time.monotonic() - started)


def _connected(git: Git, tips: list[str], started: float) -> Verified:
    scoped = Git(git.cwd, [*git.config, *_CONFIG], {**git.env, **_ENV})
    proc = scoped.run("rev-list", "--objects", "--quiet", "--stdin", input="".join(f"{t}\n" for t in tips), check=False)
    if proc.returncode != 0:
        detail = _last_line((proc.stderr or b"").decode("utf-8", "replace")) or f"exit code {proc.returncode}"
        raise VerificationFailed(f"the history is not complete: {detail}")
    return Verified(0, 0, time.monotonic() - started)


def _walk_and_hash(
    git: Git, args: list[str], tips: list[str], hex_len: int, procs: list[subprocess.Popen[bytes]], lock: threading.Lock
) -> Verified:
    scoped = Git(git.cwd, [*git.config, *_CONFIG], git.env)
    walk = scoped.popen(*args, stdout=subprocess.PIPE)
    batch = scoped.popen("cat-file", "--batch", "--buffer", stdin=walk.stdout)
    with lock:
        procs.extend((walk, batch))
    assert walk.stdin is not None and walk.stdout is not None and batch.stdout is not None
    walk.stdout.close()  # cat-file holds the read end now
    walk_err = _drain(walk.stderr)
    batch_err = _drain(batch.stderr)
    try:
        if "--no-walk" not in args:
            walk.stdin.write("".join(f"{oid}\n" for oid in tips).encode())
        walk.stdin.close()
        found = _hash_objects(batch.stdout, hex_len)
    except BaseException:
        for proc in (walk, batch):  # stop both before waiting: a full pipe would block them
            if proc.poll() is None:
                proc.kill()
        raise
    finally:
        batch.stdout.close()
        walk.wait()
        batch.wait()
        walk_err.join()
        batch_err.join()
    if walk.returncode != 0:
        detail = _last_line(walk_err.text) or f"exit code {walk.returncode}"
        raise VerificationFailed(f"the history is not complete: {detail}")
    if batch.returncode != 0:
        detail = _last_line(batch_err.text) or f"exit code {batch.returncode}"
        raise VerificationFailed(f"objects cannot be read: {detail}")
    return found


def _hash_objects(out: IO[bytes], hex_len: int) -> Verified:
    algo = hashlib.sha1 if hex_len == 40 else hashlib.sha256
    found = Verified()
    while line := out.readline():
        parts = line.split()
        if len(parts) == 2 and parts[1] == b"missing":
            oid = parts[0].decode("ascii", "replace")
            raise VerificationFailed(f"object {oid} is missing", oid)
        if len(parts) != 3:
            raise VerificationFailed(f"unexpected output from cat-file: {line[:80]!r}")
        oid, kind, size_text = parts[0].decode("ascii", "replace"), parts[1], int(parts[2])
        digest = algo(b"%s %d\0" % (kind, size_text))
        left = size_text
        while left:
            chunk = out.read(min(left, CHUNK))
            if not chunk:
                raise VerificationFailed(f"object {oid} could not be read completely", oid)
            digest.update(chunk)
            left -= len(chunk)
        out.read(1)  # the newline after each object
        if digest.hexdigest() != oid:
            raise VerificationFailed(
                f"object {oid} ({kind.decode()}) does not hash to its id: its content was replaced", oid)
        found.objects += 1
        found.bytes += size_text
    return found


class _drain(threading.Thread):
    """Collects a child's stderr on the side so it can never block the pipe."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.text = ""
        self.start()

    def run(self) -> None:
        if self.stream:
            self.text = self.stream.read().decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
