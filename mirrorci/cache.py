"""A runner's persistent cache: mirror list blobs and a bare object store clones borrow from.

Layout under --cache-dir:
  mirror-blobs/<oid>   refs/mirrors/* blobs, by object id (see remote.BlobCache)
  objects.git/         a bare repository; new clones list its objects as alternates,
                       and packs a checkout brings in are linked into it afterwards
  applied-bundles      sha256 of every bundle whose objects are in objects.git

A warm runner then has the last release's objects locally: a checkout needs no
mirror download at all when nothing changed, and otherwise fetches only what
changed since. Concurrent jobs on one host are serialized with a file lock.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import log
from .gitcmd import Git

REPACK_ABOVE_PACKS = 8


class ObjectCache:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.repo = self.root / "objects.git"
        self.git = Git(self.repo)
        self._applied = self.root / "applied-bundles"

    @contextmanager
    def locked(self) -> Iterator["ObjectCache"]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._ensure_repo()
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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

    def has_bundle(self, sha256: str) -> bool:
        try:
            return sha256 in self._applied.read_text().split()
        except OSError:
            return False

    def absorb(self, git_dir: Path, remote_url: str, tips: dict[str, str], bundles: list[str]) -> int:
        """Link the clone's packs into the cache and keep its tips reachable there.

        Hard links cost nothing and leave the clone self-contained for what it
        downloaded; across file systems the pack is copied instead.
        """
        added = 0
        for idx in sorted((git_dir / "objects" / "pack").glob("pack-*.idx")):
            pack = idx.with_suffix(".pack")
            dest_pack = self.objects_dir / "pack" / pack.name
            if dest_pack.exists() or not pack.exists():
                continue
            for src, dest in ((pack, dest_pack), (idx, dest_pack.with_suffix(".idx"))):  # idx last
                _link_or_copy(src, dest)
            added += 1
        namespace = "refs/cached/" + hashlib.sha256(log.redact_url(remote_url).encode()).hexdigest()[:16] + "/"
        lines = ["start"]
        current = self.git.out("for-each-ref", "--format=%(refname)", namespace).split()
        wanted = {namespace + ref[len("refs/"):]: oid for ref, oid in tips.items()}
        lines += [f"delete {ref}" for ref in current if ref not in wanted]
        lines += [f"update {ref} {oid}" for ref, oid in sorted(wanted.items())]
        lines += ["prepare", "commit"]
        self.git.run("update-ref", "--stdin", input="\n".join(lines) + "\n")
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


def _link_or_copy(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".tmp-{os.getpid()}-{dest.name}")
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
