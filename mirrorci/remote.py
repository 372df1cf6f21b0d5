"""Talking to origin: list its refs, read the mirror blobs, push the mirror refs atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import log
from .errors import GitError, MirrorciError
from .gitcmd import Git
from .mirrorlist import MAX_BLOB_BYTES, MIRROR_REF_PREFIX

ZERO_OIDS = {"0" * 40, "0" * 64}


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
        return {r: o for r, o in self.refs.items() if r.startswith(MIRROR_REF_PREFIX)}


def ls_remote(git: Git, url: str) -> RemoteRefs:
    try:
        text = git.out("ls-remote", "--symref", url)
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
            path.unlink(missing_ok=True)
            return None
        return data

    def put(self, oid: str, data: bytes) -> None:
        if not self.root:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.root / oid)


def blob_oid(data: bytes, hex_len: int = 40) -> str:
    algo = hashlib.sha1 if hex_len == 40 else hashlib.sha256
    return algo(b"blob %d\0" % len(data) + data).hexdigest()


def read_mirror_blobs(git: Git, url: str, refs: dict[str, str], cache: BlobCache) -> tuple[dict[str, bytes], int]:
    """Content of each mirror ref; fetches from origin only blobs the cache lacks.

    Returns the blobs and how many had to be fetched.
    """
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
            scratch.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, *sorted(missing))
            for ref, oid in missing.items():
                data = _checked_blob(scratch, ref, oid)
                if data is not None:
                    blobs[ref] = data
                    cache.put(oid, data)
    return blobs, len(missing)


def _checked_blob(git: Git, ref: str, oid: str) -> bytes | None:
    kind_size = git.out("cat-file", "--batch-check=%(objecttype) %(objectsize)", input=oid + "\n").split()
    if len(kind_size) != 2 or kind_size[0] != "blob":
        log.warn(f"ignoring {ref}: it does not point at a blob")
        return None
    if int(kind_size[1]) > MAX_BLOB_BYTES:
        log.warn(f"ignoring {ref}: {kind_size[1]} bytes is over the {MAX_BLOB_BYTES} byte limit")
        return None
    return git.run("cat-file", "blob", oid).stdout


def push_refs_atomic(git: Git, url: str, new: dict[str, str], old: dict[str, str], delete: list[str] = ()) -> None:
    """Point each ref at its new object in one atomic push, leasing the old values.

    A concurrent publish that moved a ref in between makes the whole push fail,
    so nothing is half-updated and nobody's publish is silently overwritten.
    """
    args = ["push", "--atomic", "--quiet", "--no-verify"]
    for ref in sorted([*new, *delete]):
        args.append(f"--force-with-lease={ref}:{old.get(ref, '')}")
    args.append(url)
    # No '+' on the refspecs: it would override the leases. A lease alone allows the non-fast-forward.
    args += [f"{oid}:{ref}" for ref, oid in sorted(new.items())]
    args += [f":{ref}" for ref in delete]
    try:
        git.run(*args)
    except GitError as exc:
        raise MirrorciError(
            f"pushing refs/mirrors/* to {log.redact_url(url)} failed, no mirror ref was changed: {exc}"
        ) from None


def update_refs_locally(git: Git, new: dict[str, str], old: dict[str, str], delete: list[str] = ()) -> None:
    """Same contract as push_refs_atomic for a repository we write into directly."""
    lines = ["start"]
    for ref, oid in sorted(new.items()):
        lines.append(f"update {ref} {oid} {old.get(ref, '0' * len(oid))}")
    lines += [f"delete {ref} {old[ref]}" for ref in delete]
    lines += ["prepare", "commit"]
    try:
        git.run("update-ref", "--stdin", input="\n".join(lines) + "\n")
    except GitError as exc:
        raise MirrorciError(f"updating refs/mirrors/* failed, no mirror ref was changed: {exc}") from None
