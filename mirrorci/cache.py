"""A runner's persistent cache: mirror list blobs and a bare object store clones borrow from.

Layout under --cache-dir:
  mirror-blobs/<oid>   refs/mirrors/* blobs, by object id (see remote.BlobCache)
  objects.git/         a bare repository; new clones list its objects as alternates,
                       and packs a checkout brings in are linked into it afterwards
  applied-bundles      sha256 of every bundle whose objects are in objects.git

A warm runner then has the last release's objects locally: a checkout needs no
mirror download at all when nothing changed, and otherwise fetches only what
changed since. Concurrent jobs on one host are serialized with a file lock.

What the cache trusts: nothing it holds is taken on its word. Every checkout that
borrows from it verifies the objects it relies on (verify.py), and packs enter it
only after the checkout that brought them was verified. A pack installed with a
publisher's index (not hashed by git) replaces the cache's content rather than
joining it, so no object id can have two different contents in the cache. A cache
that fails verification, or whose packs git cannot read, is moved aside to
`quarantine/` and rebuilt from the next checkout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from . import log
from .errors import GitError
from .fsutil import link_or_copy
from .gitcmd import Git
from .verify import VerificationFailed

REPACK_ABOVE_PACKS = 8


class ObjectCache:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.repo = self.root / "objects.git"
        self.git = Git(self.repo)
        self._applied = self.root / "applied-bundles"

    @contextmanager
    def locked(self) -> Iterator[ObjectCache]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("a") as handle:
            _lock(handle)
            try:
                self._ensure_repo()
                yield self
            finally:
                _unlock(handle)

    def _ensure_repo(self) -> None:
        if not (self.repo / "objects").is_dir():
            self.repo.mkdir(parents=True, exist_ok=True)
            self.git.run("init", "--quiet", "--bare")
            self.git.run("config", "gc.auto", "0")  # only we decide when to repack, under the lock

    @property
    def objects_dir(self) -> Path:
        return self.repo / "objects"

    def lend_to(self, git_dir: Path) -> None:
        """Let a repository read the cache's objects (git's alternates, as `clone --reference`)."""
        info = git_dir / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(f"{self.objects_dir}\n")

    def unlend(self, git_dir: Path) -> None:
        """Stop lending: the repository no longer reads the cache's objects."""
        (git_dir / "objects" / "info" / "alternates").unlink(missing_ok=True)

    def implicated(self, oid: str | None) -> bool:
        """Whether a failed verification may be the cache's fault.

        With an object id: the cache is at fault if it holds that object and it does not
        hash to its id (or cannot be read). Without one (git could not read a pack), assume it is.
        """
        if not oid:
            return True
        try:
            present = self.git.out("cat-file", "--batch-check=%(objectname)", input=oid + "\n")
            if present.endswith(" missing"):
                return False
            _hash_one(self.git, oid)
        except (VerificationFailed, GitError):
            return True
        return False

    def quarantine(self, reason: str) -> None:
        """Move the object store aside (kept for inspection, one at a time) and start an empty one."""
        area = self.root / "quarantine"
        shutil.rmtree(area, ignore_errors=True)
        area.mkdir(parents=True)
        os.replace(self.repo, area / f"objects-{int(time.time())}.git")
        (area / "REASON").write_text(reason + "\n")
        self._applied.unlink(missing_ok=True)
        self._ensure_repo()
        log.warn(f"runner cache set aside in {area}: {reason}")

    def _reset(self) -> None:
        shutil.rmtree(self.repo, ignore_errors=True)
        self._applied.unlink(missing_ok=True)
        self._ensure_repo()

    def has_bundle(self, sha256: str) -> bool:
        try:
            return sha256 in self._applied.read_text().split()
        except OSError:
            return False

    def absorb(
        self, git_dir: Path, remote_url: str, tips: dict[str, str], bundles: list[str], replace: bool = False
    ) -> int:
        """Link the clone's packs into the cache and keep its tips reachable there.

        Hard links cost nothing and leave the clone self-contained for what it
        downloaded; across file systems the pack is copied instead. With `replace`
        (the clone holds a pack whose index came from the publisher, and borrowed
        nothing), the clone's packs become the cache's whole content.
        """
        if replace:
            self._reset()
        added = 0
        for idx in sorted((git_dir / "objects" / "pack").glob("pack-*.idx")):
            pack = idx.with_suffix(".pack")
            dest_pack = self.objects_dir / "pack" / pack.name
            if dest_pack.exists() or not pack.exists():
                continue
            for src, dest in ((pack, dest_pack), (idx, dest_pack.with_suffix(".idx"))):  # idx last
                link_or_copy(src, dest)
            added += 1
        namespace = "refs/cached/" + hashlib.sha256(log.redact_url(remote_url).encode()).hexdigest()[:16] + "/"
        current = self.git.out("for-each-ref", "--format=%(refname)", namespace).split()
        wanted = {namespace + ref[len("refs/"):]: oid for ref, oid in tips.items()}
        self.git.update_refs(wanted, [ref for ref in current if ref not in wanted])
        new = [sha for sha in bundles if not self.has_bundle(sha)]
        if new:
            with self._applied.open("a") as f:
                f.writelines(sha + "\n" for sha in new)
        self._maybe_repack()
        return added

    def _maybe_repack(self) -> None:
        packs = list((self.objects_dir / "pack").glob("pack-*.pack"))
        if len(packs) > REPACK_ABOVE_PACKS:
            log.info(f"cache holds {len(packs)} packs; repacking it into one")
            # Drops objects no cached ref reaches any more (older releases' deleted branches).
            self.git.run("repack", "-a", "-d", "-q", "--write-bitmap-index")


def _hash_one(git: Git, oid: str) -> None:
    """Raise VerificationFailed unless the object reads back with the content its id names."""
    data = git.run("cat-file", "--batch", input=oid + "\n").stdout
    head, _, rest = data.partition(b"\n")
    parts = head.split()
    if len(parts) != 3:
        raise VerificationFailed(f"object {oid} cannot be read", oid)
    size = int(parts[2])
    algo = hashlib.sha1 if len(oid) == 40 else hashlib.sha256
    if algo(b"%s %d\0" % (parts[1], size) + rest[:size]).hexdigest() != oid:
        raise VerificationFailed(f"object {oid} does not hash to its id", oid)


def _lock(handle: IO[str]) -> None:
    """An exclusive lock on the cache's lock file: flock on POSIX, msvcrt's byte lock on Windows."""
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after about 10 s: keep waiting, as flock does
                continue
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_EX)


def _unlock(handle: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_UN)
