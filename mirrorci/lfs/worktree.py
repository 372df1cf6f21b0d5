"""Once the work tree is written (LFS files still pointers): objects from the mirror, the rest from origin, the files.

1. `git lfs install --local`, so later git commands in the clone smudge and clean as
   after actions/checkout's `lfs: true`.
2. The pointers the work tree holds: index entries present on disk (a sparse checkout's
   skipped paths are not), regular files whose blob is an LFS pointer.
3. What `.git/lfs/objects` lacks comes from the mirror (download.py), then what is
   still missing from origin's LFS server with `git lfs fetch`, origin's credentials
   and only the missing paths (`--include`), so a sparse checkout stays sparse.
4. The pointer files are written again through git's LFS filter (`git checkout-index`),
   which reads the objects just placed: the files end as `git clone` leaves them, and
   the index knows them as clean. Origin's credentials reach only origin's host (an
   `http.<origin>/.extraHeader`), never a mirror: mirror downloads are our own, bare.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import log
from ..deadline import Deadline
from ..errors import GitError, MirrorciError
from ..gitcmd import Git
from ..mirrorlist import REF_LFS_HTTP, MirrorSet
from .download import MirrorOutcome, Opener, describe_failures, fetch_objects
from .pointer import Pointer, has_object, media_dir, pointers_among
from .tool import require_git_lfs

if TYPE_CHECKING:
    from . import LfsSettings

MAX_INCLUDE_CHARS = 60_000  # one argument stays far below Linux's 128 KiB limit per argument
_GLOB = set("*?[]\\")


def fill(git: Git, origin_env: dict[str, str], mirrors: MirrorSet | None, settings: LfsSettings) -> dict[str, Any]:
    """The module docstring's steps; the summary says where the objects came from, and why not from the mirror."""
    require_git_lfs(git)
    git.run("lfs", "install", "--local")
    files = present_pointers(git)
    needed = {p.oid: p.size for p in files.values()}
    media = media_dir(git)
    todo = {oid: size for oid, size in needed.items() if not has_object(media, Pointer(oid, size))}
    summary: dict[str, Any] = {
        "files": len(files), "objects": len(needed), "already_present": len(needed) - len(todo),
        "from_mirror": 0, "bytes_from_mirror": 0, "from_origin": 0, "bytes_from_origin": 0,
        "manifest": None, "fallback": None,
    }
    if todo:
        outcome, reason = _from_mirror(mirrors, todo, media, settings, summary)
        summary["from_mirror"], summary["bytes_from_mirror"] = len(outcome.placed), sum(outcome.placed.values())
        rest = {oid: size for oid, size in todo.items() if oid not in outcome.placed}
        if rest:
            summary["fallback"] = reason
            log.info(f"{len(rest)} LFS object(s) from origin's LFS server: {reason}")
            _from_origin(git, origin_env, files, rest, media)
            summary["from_origin"], summary["bytes_from_origin"] = len(rest), sum(rest.values())
    if files:
        write_files(git.with_env(origin_env), sorted(files))
    log.info(f"{len(files)} LFS file(s), {len(needed)} object(s): {summary['from_mirror']} from the mirror "
             f"({summary['bytes_from_mirror']} bytes), {summary['from_origin']} from origin's LFS server, "
             f"{summary['already_present']} already present")
    return summary


def present_pointers(git: Git) -> dict[bytes, Pointer]:
    """path -> pointer, for the regular files of the index that are in the work tree."""
    root = Path(git.out("rev-parse", "--show-toplevel"))
    entries: list[tuple[str, bytes]] = []
    for record in git.run("ls-files", "-s", "-t", "-z").stdout.split(b"\0"):
        meta, _, path = record.partition(b"\t")
        fields = meta.decode("ascii", "replace").split()
        # "H": in the work tree ("S": skipped by a sparse checkout); only regular files are smudged.
        if len(fields) == 4 and fields[0] == "H" and fields[1] in ("100644", "100755") and fields[3] == "0":
            if os.path.lexists(root / os.fsdecode(path)):
                entries.append((fields[2], path))
    pointers = pointers_among(git, [oid for oid, _ in entries])
    return {path: pointers[oid] for oid, path in entries if oid in pointers}


def _from_mirror(mirrors: MirrorSet | None, todo: dict[str, int], media: Path, settings: LfsSettings,
                 summary: dict[str, Any]) -> tuple[MirrorOutcome, str]:
    """Whatever the mirror gets wrong is a reason, never an exception: origin's LFS server takes over."""
    advert = mirrors.lfs if mirrors else None
    if mirrors is None:
        return MirrorOutcome(), "no mirror list was read for this checkout"
    if advert is None:
        return MirrorOutcome(), f"origin advertises no {REF_LFS_HTTP}"
    summary["manifest"] = log.redact_url(advert.manifest)
    opener = Opener(Deadline(settings.timeout, settings.stall_timeout), settings.allow_file_urls, settings.s3)
    try:
        outcome = fetch_objects(advert, todo, media, opener, settings.show_progress)
    except Exception as exc:  # a manifest the mirror got wrong: every object from origin
        reason = f"the mirror's LFS manifest was not used: {log.redact(str(exc) or type(exc).__name__)}"
        log.warn(reason)
        return MirrorOutcome(), reason
    reason = describe_failures(outcome) or ""
    if outcome.failed:
        log.warn(reason)
    return outcome, reason


def _from_origin(git: Git, origin_env: dict[str, str], files: dict[bytes, Pointer], rest: dict[str, int],
                 media: Path) -> None:
    """`git lfs fetch` of just the missing objects' paths, as origin's LFS server would serve a clone."""
    paths: dict[str, bytes] = {}
    for path, pointer in sorted(files.items()):
        if pointer.oid in rest:
            paths.setdefault(pointer.oid, path)  # one path per object is enough
    fetch = git.with_env(origin_env)
    for include in include_arguments(sorted(paths.values())):
        try:
            fetch.run("lfs", "fetch", f"--include={include}", "origin", "HEAD")
        except GitError as exc:
            raise MirrorciError(f"fetching LFS objects from origin's LFS server failed: {exc}") from None
    missing = [oid for oid, size in rest.items() if not has_object(media, Pointer(oid, size))]
    if missing:  # e.g. paths lfs.fetchexclude leaves out: git-lfs decides what their files hold, as in a clone
        example = os.fsdecode(paths[missing[0]])
        log.warn(f"git lfs fetch left {len(missing)} LFS object(s) out, e.g. for {example!r}; "
                 "git-lfs handles them while writing the files")


def include_arguments(paths: list[bytes]) -> list[str]:
    """git-lfs --include values naming exactly these paths: anchored at the top, glob characters escaped.

    A comma separates patterns, so one inside a name becomes `?` (any one character):
    at worst a sibling's object is fetched too.
    """
    patterns = ["/" + "".join("\\" + c if c in _GLOB else "?" if c == "," else c for c in os.fsdecode(p))
                for p in paths]
    chunks: list[str] = []
    current: list[str] = []
    for pattern in patterns:
        if current and sum(len(p) + 1 for p in current) + len(pattern) > MAX_INCLUDE_CHARS:
            chunks.append(",".join(current))
            current = []
        current.append(pattern)
    if current:
        chunks.append(",".join(current))
    return chunks


def write_files(git: Git, paths: list[bytes]) -> None:
    """Write the files again through git's LFS filter (objects are local now), and refresh their index entries.

    `checkout-index` leaves a file alone whose stat matches the index, so the pointer
    files are removed first. Whatever git-lfs still lacks it downloads from origin's LFS
    server (`git` carries origin's credentials), or leaves as a pointer where lfs.fetchexclude
    says so, exactly as in a `git clone`; a failure fails the checkout.
    """
    root = Path(git.out("rev-parse", "--show-toplevel"))
    for path in paths:
        (root / os.fsdecode(path)).unlink(missing_ok=True)
    try:
        git.run("checkout-index", "-f", "-u", "-z", "--stdin", input=b"\0".join(paths) + b"\0",
                env={"GIT_LFS_SKIP_SMUDGE": "0"})
    except GitError as exc:
        raise MirrorciError(f"git-lfs could not write the LFS files: {exc}") from None
