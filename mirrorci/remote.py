"""Talking to origin: list its refs, read the mirror blobs, push the mirror refs atomically.

Every conversation with origin goes through `with_retries`: a CI job should not
fail because origin dropped one connection (actions/checkout retries its fetch
the same way), but it must fail at once on a wrong token or a missing repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from . import log
from .errors import GitError, MirrorciError
from .gitcmd import Git
from .mirrorlist import (
    MAX_BLOB_BYTES,
    REF_BUNDLE_HTTP,
    REF_BUNDLE_MAGNET,
    REF_BUNDLE_TORRENT,
    REF_FETCH_GIT,
    REF_FETCH_HTTP,
    REF_LFS_HTTP,
)

# The only refs/mirrors/* refs mirrorci reads or writes. Anyone who can push can create
# others (100,000 of them make git's command line too long): they are ignored.
KNOWN_MIRROR_REFS = frozenset({
    REF_BUNDLE_HTTP, REF_BUNDLE_TORRENT, REF_BUNDLE_MAGNET, REF_FETCH_GIT, REF_FETCH_HTTP, REF_LFS_HTTP,
})
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

T = TypeVar("T")
RETRY_ATTEMPTS = 3
RETRY_DELAYS: tuple[float, ...] = (1.0, 3.0)

# Checked first: a failure that another attempt cannot fix (credentials, a missing
# repository or ref, a push refused by a lease or a hook) fails at once.
_PERMANENT = re.compile(
    r"authentication failed|could not read (username|password)|terminal prompts disabled|invalid credentials"
    r"|not found|does not appear to be a git repository|permission denied|access denied|not exported"
    r"|(returned error|http)[: ]+40[0-9]\b|\b40[134] (unauthorized|forbidden|not found)"
    r"|\[(remote )?rejected\]|stale info|atomic push failed|non-fast-forward|couldn't find remote ref"
    r"|invalid refspec|not our ref|unsupported|unknown option",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"connection (reset|refused|timed out|closed)|timed out|early eof|rpc failed|unexpected disconnect"
    r"|remote end hung up|could not resolve host|temporary failure in name resolution|name or service not known"
    r"|failed to connect|couldn't connect|unable to connect|network is unreachable|no route to host"
    r"|empty reply from server|transfer closed|broken pipe|ssl_error_syscall|gnutls|tls connection"
    r"|(returned error|http)[: ]+(5[0-9][0-9]|429)\b|internal server error|bad gateway|service unavailable"
    r"|gateway time-?out|too many requests",
    re.IGNORECASE,
)


def is_transient(message: str) -> bool:
    """Whether a failed git command talking to a remote is worth another attempt."""
    return not _PERMANENT.search(message) and bool(_TRANSIENT.search(message))


def with_retries(
    action: Callable[[], T],
    what: str,
    attempts: int = RETRY_ATTEMPTS,
    delays: Sequence[float] = RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`; on a transient GitError wait and run it again, up to `attempts` times.

    `delays[i]` is the wait after attempt i+1 (the last one repeats). Each retry is one
    line in the log; a permanent error, or the last attempt's, propagates as a GitError
    that says how many attempts were made.
    """
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except GitError as exc:
            if not is_transient(str(exc)):
                raise
            if attempt == attempts:
                if attempts == 1:
                    raise
                raise GitError(f"{exc} (after {attempts} attempts)") from None
            delay = delays[min(attempt - 1, len(delays) - 1)] if delays else 0.0
            log.warn(f"{what}: attempt {attempt} of {attempts} failed, retrying in {delay:g}s: {exc}")
            sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class RemoteRefs:
    """What origin advertised on first contact."""

    refs: dict[str, str] = field(default_factory=dict)
    head_target: str | None = None
    head_oid: str | None = None

    def tips(self) -> dict[str, str]:
        """Branches and tags: what a clone must end up with."""
        return {r: o for r, o in self.refs.items() if r.startswith(("refs/heads/", "refs/tags/"))}

    def mirror_refs(self) -> dict[str, str]:
        """The refs/mirrors/* refs mirrorci knows; any other ref under refs/mirrors/ is ignored."""
        return known_mirror_refs(self.refs)


def known_mirror_refs(refs: dict[str, str]) -> dict[str, str]:
    """Only the mirror refs mirrorci reads, each pointing at a well-formed object id."""
    return {r: o for r, o in refs.items() if r in KNOWN_MIRROR_REFS and _OID.fullmatch(o)}


def ls_remote(
    git: Git, url: str, *, delays: Sequence[float] = RETRY_DELAYS, sleep: Callable[[float], None] = time.sleep
) -> RemoteRefs:
    """origin's refs and HEAD, retried on transient failures."""
    try:
        text = with_retries(lambda: git.out("ls-remote", "--symref", url),
                            f"listing refs of {log.redact_url(url)}", delays=delays, sleep=sleep)
    except GitError as exc:
        raise MirrorciError(f"cannot list refs of {log.redact_url(url)}: {exc}") from None
    found = RemoteRefs()
    for line in text.splitlines():
        left, _, name = line.partition("\t")
        if left.startswith("ref: ") and name == "HEAD":
            found.head_target = left[5:]
        elif name == "HEAD":
            found.head_oid = left
        elif name and not name.endswith("^{}"):
            found.refs[name] = left
    return found


class BlobCache:
    """Mirror blobs kept by object id across runs: the proposal's "cache the mirror list"."""

    def __init__(self, root: Path | None) -> None:
        self.root = root / "mirror-blobs" if root else None

    def get(self, oid: str) -> bytes | None:
        if not self.root:
            return None
        path = self.root / oid
        try:
            data = path.read_bytes()
        except OSError:
            return None
        # The name is the git object id, so the content can be checked for free.
        if blob_oid(data, len(oid)) != oid:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            return None
        return data

    def put(self, oid: str, data: bytes) -> None:
        """Keep a blob for the next run; a cache that cannot be written only costs a fetch next time."""
        if not self.root:
            return
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.root / oid)
        except OSError as exc:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            log.warn(f"cannot keep a mirror blob in {self.root}: {exc.strerror or exc}")


def blob_oid(data: bytes, hex_len: int = 40) -> str:
    algo = hashlib.sha1 if hex_len == 40 else hashlib.sha256
    return algo(b"blob %d\0" % len(data) + data).hexdigest()


def read_mirror_blobs(
    git: Git, url: str, refs: dict[str, str], cache: BlobCache, *,
    delays: Sequence[float] = RETRY_DELAYS, sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, bytes], int]:
    """Content of each known mirror ref; fetches from origin only blobs the cache lacks.

    Returns the blobs and how many had to be fetched. Refs under refs/mirrors/ that
    mirrorci does not know are never fetched. Any failure is a GitError (the callers
    treat it as "no mirrors"), whether git, the cache directory or the disk failed.
    """
    refs = known_mirror_refs(refs)
    try:
        return _read_mirror_blobs(git, url, refs, cache, delays, sleep)
    except OSError as exc:
        raise GitError(f"reading refs/mirrors/*: {exc.strerror or exc}") from None


def _read_mirror_blobs(
    git: Git, url: str, refs: dict[str, str], cache: BlobCache, delays: Sequence[float], sleep: Callable[[float], None],
) -> tuple[dict[str, bytes], int]:
    blobs: dict[str, bytes] = {}
    missing: dict[str, str] = {}
    for ref, oid in refs.items():
        data = cache.get(oid)
        if data is None:
            missing[ref] = oid
        else:
            blobs[ref] = data
    if missing:
        # A scratch repository takes the blobs, so neither a clone nor the publisher's
        # repository keeps objects that no ref of theirs reaches. `git` lends its environment
        # (origin's credentials).
        with tempfile.TemporaryDirectory(prefix="mirrorci-blobs-") as tmp:
            scratch = Git(Path(tmp), env=git.env)
            object_format = "sha256" if len(next(iter(missing.values()))) == 64 else "sha1"
            scratch.run("init", "--quiet", "--bare", f"--object-format={object_format}")
            # The refspecs go on stdin: however many there are, the command line stays short.
            with_retries(
                lambda: scratch.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--stdin", url,
                                    input="".join(f"{ref}\n" for ref in sorted(missing))),
                f"reading refs/mirrors/* from {log.redact_url(url)}", delays=delays, sleep=sleep,
            )
            for ref, oid in missing.items():
                data = _checked_blob(scratch, ref, oid)
                if data is not None:
                    blobs[ref] = data
                    cache.put(oid, data)
    return blobs, len(missing)


def local_mirror_blobs(git: Git, refs: dict[str, str]) -> dict[str, bytes]:
    """read_mirror_blobs for a repository read directly (publishing into origin itself)."""
    blobs = {}
    for ref, oid in known_mirror_refs(refs).items():
        data = _checked_blob(git, ref, oid)
        if data is not None:
            blobs[ref] = data
    return blobs


def _checked_blob(git: Git, ref: str, oid: str) -> bytes | None:
    kind_size = git.out("cat-file", "--batch-check=%(objecttype) %(objectsize)", input=oid + "\n").split()
    if len(kind_size) != 2 or kind_size[0] != "blob":
        log.warn(f"ignoring {ref}: it does not point at a blob")
        return None
    if int(kind_size[1]) > MAX_BLOB_BYTES:
        log.warn(f"ignoring {ref}: {kind_size[1]} bytes is over the {MAX_BLOB_BYTES} byte limit")
        return None
    return git.run("cat-file", "blob", oid).stdout


def push_refs_atomic(
    git: Git, url: str, new: dict[str, str], old: dict[str, str], delete: Sequence[str] = (), *,
    delays: Sequence[float] = RETRY_DELAYS, sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Point each ref at its new object in one atomic push, leasing the old values.

    A concurrent publish that moved a ref in between makes the whole push fail,
    so nothing is half-updated and nobody's publish is silently overwritten.
    A lost connection is retried; a refused lease never is.
    """
    args = ["push", "--atomic", "--quiet", "--no-verify"]
    for ref in sorted([*new, *delete]):
        args.append(f"--force-with-lease={ref}:{old.get(ref, '')}")
    args.append(url)
    # No '+' on the refspecs: it would override the leases. A lease alone allows the non-fast-forward.
    args += [f"{oid}:{ref}" for ref, oid in sorted(new.items())]
    args += [f":{ref}" for ref in delete]
    attempt = 0

    def push() -> None:
        nonlocal attempt
        attempt += 1
        try:
            git.run(*args)
        except GitError:
            # The connection may have dropped after origin applied an earlier attempt:
            # its refs then already say what this push says, and the lease now refuses it.
            if attempt > 1 and _already_pushed(git, url, new, delete):
                log.info("origin already has the new refs/mirrors/* (applied by an earlier attempt)")
                return
            raise

    try:
        with_retries(push, f"pushing refs/mirrors/* to {log.redact_url(url)}", delays=delays, sleep=sleep)
    except GitError as exc:
        raise MirrorciError(
            f"pushing refs/mirrors/* to {log.redact_url(url)} failed, no mirror ref was changed: {exc}"
        ) from None


def _already_pushed(git: Git, url: str, new: dict[str, str], delete: Sequence[str]) -> bool:
    try:
        listed = git.out("ls-remote", url, *sorted([*new, *delete]))
    except GitError:
        return False
    found = {name: oid for oid, _, name in (line.partition("\t") for line in listed.splitlines())}
    return all(found.get(ref) == oid for ref, oid in new.items()) and not any(ref in found for ref in delete)


def update_refs_locally(git: Git, new: dict[str, str], old: dict[str, str], delete: Sequence[str] = ()) -> None:
    """Same contract as push_refs_atomic for a repository we write into directly."""
    try:
        git.update_refs(new, delete, old=old)
    except GitError as exc:
        raise MirrorciError(f"updating refs/mirrors/* failed, no mirror ref was changed: {exc}") from None
