"""Publishing LFS objects: those the published tips point to, uploaded by oid, listed in a manifest.

Scope: the trees of the published tips (every branch and tag, and HEAD), which is what a
checkout of any published ref needs. Objects only older commits point to are not
uploaded; a checkout of such a commit takes them from origin's LFS server.

Content comes from the publishing repository's LFS storage (`.git/lfs/objects`), and
what it lacks is fetched with `git lfs fetch` from origin's LFS server. Every object is
hashed against its oid before it goes up, under `<name>/lfs/objects/aa/bb/<oid>`; one
already in the store (same key, same size) is not uploaded again. The manifest goes
up under its sha256, and the ref that names it moves with the other refs/mirrors/* refs.
Nothing under `<name>/lfs/` is ever deleted by retention, which only looks at `<name>/bundles/`.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import log
from ..bundle import file_sha256
from ..errors import GitError, UsageError
from ..gitcmd import Git
from ..mirrorlist import REF_LFS_HTTP
from ..progress import Progress
from ..store import Store
from .manifest import LfsAdvert, object_path, render_manifest
from .pointer import MAX_POINTER_BYTES, media_dir, pointers_among, read_blobs
from .tool import git_lfs_version

MODES = ("auto", "true", "false")
OBJECT_TYPE = "application/octet-stream"
MANIFEST_TYPE = "application/json"
PARALLEL_UPLOADS = 8
FETCH_BATCH = 100  # tips per `git lfs fetch`: a short command line however many tips there are


@dataclass
class LfsPublished:
    """What the publish adds: the ref (none when LFS is not published) and its JSON summary."""

    refs: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class TipScan:
    pointers: dict[str, int]  # oid -> size, from every published tip's tree
    attributes: bool  # some .gitattributes of a tip says filter=lfs
    commits: list[str]  # the tips, peeled to commits (what `git lfs fetch` is given)


def objects_prefix(name: str) -> str:
    return f"{name}/lfs/objects/"


def object_key(name: str, oid: str) -> str:
    return f"{objects_prefix(name)}{object_path(oid)}"


def manifest_key(name: str, sha256: str) -> str:
    return f"{name}/lfs/manifests/{sha256}.json"


def publish_lfs(mode: str, git: Git, local: Git, store: Store, name: str, public_url: str | None,
                remote_url: str | None) -> LfsPublished:
    """Upload the LFS objects of `git`'s tips and return the ref to push with the others.

    `git` is the repository being bundled (it may be a snapshot of the remote); `local` is
    the publishing repository, whose LFS storage is read first. `mode`: auto (only when the
    tips use LFS), true, or false.
    """
    if mode not in MODES:
        raise UsageError(f"--lfs must be one of {', '.join(MODES)}")
    if mode == "false":
        return LfsPublished(summary={"mode": mode, "published": False, "reason": "--lfs false"})
    with log.group("LFS objects of the published tips"):
        scan = scan_tips(git)
        if mode == "auto" and not (scan.pointers or scan.attributes):
            log.info("the published tips use no LFS: no LFS objects published")
            return LfsPublished(summary={"mode": mode, "published": False,
                                         "reason": "no LFS pointer or filter=lfs attribute in the published tips"})
        in_store = {o.key: o.size for o in store.list(objects_prefix(name))}
        wanted = {oid: size for oid, size in scan.pointers.items() if in_store.get(object_key(name, oid)) != size}
        files, fetched = _gather(wanted, git, local, remote_url, scan.commits)
        uploaded, sent = _upload_all(store, name, files, wanted)
        listed = {oid: size for oid, size in scan.pointers.items()
                  if oid in uploaded or in_store.get(object_key(name, oid)) == size}
        advert, key = _put_manifest(store, name, public_url, listed)
        missing = sorted(set(scan.pointers) - set(listed))
        if missing:
            log.warn(f"{len(missing)} LFS object(s) could not be read or fetched and are not in the mirror; "
                     "checkouts take them from origin's LFS server")
        log.info(f"{len(listed)} LFS object(s) listed, {len(uploaded)} uploaded ({sent} bytes)")
    return LfsPublished(refs={REF_LFS_HTTP: advert.render()}, summary={
        "mode": mode, "published": True, "objects": len(scan.pointers), "listed": len(listed),
        "uploaded": len(uploaded), "bytes_uploaded": sent, "already_in_store": len(scan.pointers) - len(wanted),
        "fetched_from_origin": fetched, "missing": len(missing), "missing_oids": missing[:10],
        "manifest": {"key": key, "url": advert.manifest, "sha256": advert.sha256, "size": advert.size},
    })


def _tips(git: Git) -> tuple[set[str], set[str]]:
    """The ids of the branches, tags and HEAD, and the commits among them (tags peeled)."""
    tips: set[str] = set()
    commits: set[str] = set()
    refs = git.out("for-each-ref", "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname)",
                   "refs/heads", "refs/tags")
    for fields in (line.split() for line in refs.splitlines()):
        if len(fields) < 2:
            continue
        tips.add(fields[1])
        if fields[0] == "commit":
            commits.add(fields[1])
        elif len(fields) == 4 and fields[2] == "commit":  # an annotated tag of a commit
            commits.add(fields[3])
    head = git.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    if head.returncode == 0:
        tips.add(head.stdout.decode().strip())
        commits.add(head.stdout.decode().strip())
    return tips, commits


def scan_tips(git: Git) -> TipScan:
    """Every LFS pointer in the trees of the branches, tags and HEAD (not their history)."""
    tips, commits = _tips(git)
    if not tips:
        return TipScan({}, False, [])
    listing = git.out("rev-list", "--objects", "--no-walk", "--stdin", f"--filter=blob:limit={MAX_POINTER_BYTES}",
                      input="".join(f"{t}\n" for t in sorted(tips))).splitlines()
    oids = [line.split(" ", 1)[0] for line in listing]
    attribute_blobs = [line.split(" ", 1)[0] for line in listing
                       if line.endswith(("/.gitattributes", " .gitattributes"))]
    pointers = pointers_among(git, oids)
    return TipScan(
        pointers={p.oid: p.size for p in pointers.values()},
        attributes=_says_filter_lfs(git, attribute_blobs),
        commits=sorted(commits),
    )


def _says_filter_lfs(git: Git, blobs: list[str]) -> bool:
    return any(b"filter=lfs" in data for data in read_blobs(git, sorted(set(blobs))).values())


def _gather(wanted: dict[str, int], git: Git, local: Git, remote_url: str | None,
            commits: list[str]) -> tuple[dict[str, Path], int]:
    """oid -> a file holding it, from the LFS storage of both repositories, fetching what neither has."""
    dirs = list(dict.fromkeys([media_dir(local), media_dir(git)]))
    found = _locate(wanted, dirs)
    missing = {oid: size for oid, size in wanted.items() if oid not in found}
    if not missing:
        return found, 0
    log.info(f"{len(missing)} LFS object(s) are not in {dirs[0]}: fetching them from origin's LFS server")
    _fetch(git, local, remote_url, commits)
    more = _locate(missing, dirs)
    found.update(more)
    return found, len(more)


def _locate(wanted: dict[str, int], dirs: list[Path]) -> dict[str, Path]:
    found = {}
    for oid, size in wanted.items():
        for directory in dirs:
            path = directory / object_path(oid)
            try:
                if path.stat().st_size == size:
                    found[oid] = path
                    break
            except OSError:
                continue
    return found


def _fetch(git: Git, local: Git, remote_url: str | None, commits: list[str]) -> None:
    """`git lfs fetch` of the tips, in batches; a failure is a warning (those objects stay out of the mirror)."""
    if not git_lfs_version(git):
        log.warn("git-lfs is not installed, so LFS objects missing here cannot be fetched; install git-lfs")
        return
    remote = remote_url or ("origin" if git.ok("config", "--get", "remote.origin.url") else None)
    if not remote:
        log.warn("the repository has no remote to fetch the missing LFS objects from")
        return
    # The snapshot of the remote does not have the publishing repository's config: lend it its LFS URL.
    configured = local.run("config", "--get", "lfs.url", check=False).stdout.decode().strip()
    fetcher = Git(git.cwd, [*git.config, f"lfs.url={configured}"] if configured else git.config, git.env)
    for i in range(0, len(commits), FETCH_BATCH):
        try:
            fetcher.run("lfs", "fetch", remote, *commits[i:i + FETCH_BATCH])
        except GitError as exc:
            log.warn(f"git lfs fetch: {exc}")


def _upload_all(store: Store, name: str, files: dict[str, Path], wanted: dict[str, int]) -> tuple[set[str], int]:
    """Upload (in parallel) every object found, each hashed against its oid first; returns the oids and bytes sent."""
    if not files:
        return set(), 0
    progress = Progress("upload LFS objects", sum(wanted[oid] for oid in files))
    lock = threading.Lock()

    def count(n: int) -> None:
        with lock:
            progress(n)

    def one(oid: str) -> str | None:
        if file_sha256(files[oid]) != oid:
            log.warn(f"LFS object {oid} in {files[oid].parent} does not match its oid: not uploaded")
            return None
        store.put_file(object_key(name, oid), files[oid], OBJECT_TYPE, count)
        return oid

    try:
        with ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS) as pool:
            done = {oid for oid in pool.map(one, sorted(files)) if oid}
    finally:
        progress.close()
    return done, sum(wanted[oid] for oid in done)


def _put_manifest(store: Store, name: str, public_url: str | None, listed: dict[str, int]) -> tuple[LfsAdvert, str]:
    data = render_manifest(listed)
    sha256 = hashlib.sha256(data).hexdigest()
    key = manifest_key(name, sha256)
    if store.size_of(key) != len(data):
        store.put_bytes(key, data, MANIFEST_TYPE)
    url = f"{public_url.rstrip('/')}/{key}" if public_url else store.url_for(key)
    return LfsAdvert(manifest=url, sha256=sha256, size=len(data), objects=len(listed)), key
