"""Publish a release: bundle the repository, upload it, then point refs/mirrors/* at it.

Order matters: artifacts are uploaded under content-addressed keys first, and the
refs move last in one atomic push with leases, so clients never see refs that
point at missing or half-written objects, and concurrent publishes cannot
silently overwrite each other.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import git as gitpython

from . import auth, bundle, incremental, log
from .auth import DEFAULT_TOKEN_USER
from .errors import GitError, MirrorciError, UsageError
from .gitcmd import Git
from .mirrorlist import (
    REF_BUNDLE_HTTP, REF_BUNDLE_MAGNET, REF_BUNDLE_TORRENT, REF_FETCH_GIT, REF_FETCH_HTTP, BundleEntry, BundleList, MirrorListError,
    parse_bundle_list, parse_url_list, render_url_list,
)
from .progress import Progress
from .remote import (
    BlobCache, known_mirror_refs, local_mirror_blobs, ls_remote, push_refs_atomic, read_mirror_blobs, update_refs_locally,
    with_retries,
)
from .s3config import S3Options
from .store import Store, open_store

LIST_KEY = "bundle-list"
BUNDLE_TYPE = "application/x-git-bundle"
# git reads creationToken as an unsigned 64-bit number; staying within the signed range keeps
# every reader of the list (and JSON consumers) exact.
MAX_CREATION_TOKEN = (1 << 63) - 1


@dataclass
class PublishOptions:
    store: str
    repo: Path = Path(".")
    remote: str = "origin"
    public_url: str | None = None
    git_mirrors: list[str] = field(default_factory=list)
    http_mirrors: list[str] = field(default_factory=list)
    name: str | None = None
    push: bool = True
    s3: S3Options = field(default_factory=S3Options)
    source: str = "auto"  # local: the repo's own branches/tags; remote: everything the remote has; auto: remote when pushing
    token: str | None = None  # for the remote only; see auth.py
    token_user: str = DEFAULT_TOKEN_USER
    torrent: Any = None  # torrent.publishing.TorrentPublishOptions

SOURCES = ("auto", "local", "remote")


def _open_repo(path: Path) -> gitpython.Repo:
    try:
        return gitpython.Repo(path)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        raise UsageError(f"--repo {path}: not a git repository; point it at a clone or a bare repository") from None


def _remote_url(repo: gitpython.Repo, remote: str) -> str:
    if remote in [r.name for r in repo.remotes]:
        return repo.remotes[remote].url
    if urlsplit(remote).scheme or remote.startswith(("/", "./", "../")) or re.match(r"^[\w.-]+@[\w.-]+:", remote):
        return remote
    raise UsageError(f"--remote {remote!r}: no such remote in the repository; give a remote name or a URL")


def default_name(url: str | None, repo_dir: Path) -> str:
    base = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] if url else ""
    base = base or repo_dir.resolve().name
    base = re.sub(r"\.git$", "", base)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "repo"


def _check_urls(urls: list[str], schemes: tuple[str, ...], flag: str) -> list[str]:
    try:
        return parse_url_list("\n".join(urls), schemes)
    except MirrorListError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _snapshot_remote(local: Git, remote: Git, url: str, dest: Path) -> Git:
    """A bare copy of every branch and tag the remote has, borrowing the local objects.

    CI workspaces are usually shallow single-branch checkouts; the mirror must still
    hold the full history of every branch and tag. A shallow repository cannot lend
    its objects (its history has holes git would trust), so then everything is fetched.
    """
    dest.mkdir(parents=True)
    snap = Git(dest, env=remote.env)
    snap.run("init", "--quiet", "--bare", f"--object-format={local.out('rev-parse', '--show-object-format')}")
    if local.out("rev-parse", "--is-shallow-repository") != "true":
        (dest / "objects" / "info" / "alternates").write_text(f"{local.git_path('objects')}\n")
    with_retries(
        lambda: snap.run("fetch", "--quiet", "--no-tags", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"),
        f"fetching from {log.redact_url(url)}",
    )
    head = ls_remote(snap, url).head_target
    if head and snap.ok("rev-parse", "--verify", "-q", head):
        snap.run("symbolic-ref", "HEAD", head)
    return snap


def publish(opts: PublishOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mirrorci-publish-") as tmp:
        return _publish(opts, Path(tmp))


def _publish(opts: PublishOptions, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    timings: dict[str, float] = {}
    if opts.source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}")
    if opts.source == "remote" and not opts.push:
        raise UsageError("--source remote needs a remote to read from; drop --no-push or use --source local")
    repo = _open_repo(opts.repo)
    local = Git(Path(repo.git_dir))
    remote_url = _remote_url(repo, opts.remote) if opts.push else None
    remote_git = local.with_env(auth.origin_env(remote_url, opts.token, opts.token_user)) if remote_url else local
    git_mirrors = _check_urls(opts.git_mirrors, ("git", "http", "https", "ssh"), "--git-mirror")
    http_mirrors = _check_urls(opts.http_mirrors, ("http", "https"), "--http-mirror")
    if opts.public_url and urlsplit(opts.public_url).scheme not in ("http", "https"):
        raise UsageError("--public-url must be an http:// or https:// URL")
    if opts.torrent is not None:
        opts.torrent.validate()
    store = open_store(opts.store, opts.s3)
    store.check()
    name = opts.name or default_name(remote_url, Path(repo.working_tree_dir or repo.git_dir))
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise UsageError("--name may only contain letters, digits, '.', '_' and '-'")

    with log.group("Reading current mirror refs"):
        t = time.monotonic()
        old = ls_remote(remote_git, remote_url).mirror_refs() if remote_url else _local_mirror_refs(local)
        previous = _previous_full(_previous_list(local, remote_git, remote_url, old))
        previous_token = _previous_token(previous)
        timings["read_refs"] = time.monotonic() - t

    git = remote_git  # the repository that is bundled and that pushes the refs
    if remote_url and opts.source != "local":
        with log.group(f"Fetching every branch and tag of {log.redact_url(remote_url)}"):
            t = time.monotonic()
            git = _snapshot_remote(local, remote_git, remote_url, workdir / "snapshot.git")
            timings["fetch_remote"] = time.monotonic() - t

    with log.group("Creating bundle"):
        t = time.monotonic()
        refnames = bundle.bundle_refnames(git)
        bundle_path = workdir / "release.bundle"
        header = bundle.create(git, bundle_path, refnames)
        sha256 = bundle.file_sha256(bundle_path)
        size = bundle_path.stat().st_size
        timings["bundle"] = time.monotonic() - t
        log.info(f"bundle of {len(header.refs)} refs, {size} bytes, sha256 {sha256}")
        t = time.monotonic()
        idx_path = bundle.make_index(git, bundle_path, header, workdir)
        timings["index"] = time.monotonic() - t

    bundle_key = f"{name}/bundles/{sha256}.bundle"
    idx_key = f"{name}/bundles/{sha256}.idx"
    with log.group(f"Uploading to {store.describe()}"):
        t = time.monotonic()
        _upload(store, [(idx_key, idx_path, "application/octet-stream"), (bundle_key, bundle_path, BUNDLE_TYPE)])
        timings["upload"] = time.monotonic() - t

    entry = BundleEntry(
        id=f"{name}-{sha256[:12]}",
        uri=_url(opts.public_url, store.url_for(bundle_key), bundle_key),
        creation_token=max(int(time.time()), previous_token + 1),
        sha256=sha256,
        size=size,
        pack_checksum=bundle.pack_checksum(bundle_path, header),
        header_size=header.size,
        idx_uri=_url(opts.public_url, store.url_for(idx_key), idx_key),
        idx_sha256=bundle.file_sha256(idx_path),
        idx_size=idx_path.stat().st_size,
        object_format=header.object_format,
    )
    since = _incremental(git, store, name, previous, refnames, workdir, entry, opts.public_url) if previous else None
    bundle_list = BundleList(bundles=[entry, *([since] if since else [])]).render()

    torrent = None
    if opts.torrent is not None and opts.torrent.active:
        from .torrent import publishing

        with log.group("Building the torrent"):
            t = time.monotonic()
            torrent_key = f"{name}/bundles/{sha256}.torrent"
            torrent = publishing.prepare(
                opts.torrent, store, name=name, sha256=sha256, bundle_path=bundle_path, idx_path=idx_path,
                bundle_url=entry.uri, workdir=workdir,
                torrent_url=_url(opts.public_url, store.url_for(torrent_key), torrent_key),
            )
            timings["torrent"] = time.monotonic() - t

    contents: dict[str, str | bytes] = {REF_BUNDLE_HTTP: bundle_list}
    if torrent:
        contents[REF_BUNDLE_TORRENT] = torrent.built.data
        contents[REF_BUNDLE_MAGNET] = torrent.built.meta.magnet + "\n"
    if git_mirrors:
        contents[REF_FETCH_GIT] = render_url_list(git_mirrors)
    if http_mirrors:
        contents[REF_FETCH_HTTP] = render_url_list(http_mirrors)
    new = {ref: git.out("hash-object", "-w", "--stdin", input=text) for ref, text in contents.items()}
    # Refs that describe a bundle must not outlive it: a torrent of the previous release goes.
    stale = sorted(ref for ref in (REF_BUNDLE_TORRENT, REF_BUNDLE_MAGNET) if ref in old and ref not in new)

    with log.group("Updating refs/mirrors/*"):
        t = time.monotonic()
        if remote_url:
            push_refs_atomic(git, remote_url, new, old, delete=stale)
        else:
            update_refs_locally(git, new, old, delete=stale)
        timings["refs"] = time.monotonic() - t

    list_key = f"{name}/{LIST_KEY}"
    try:
        store.put_bytes(list_key, bundle_list.encode(), "text/plain; charset=utf-8")
    except MirrorciError as exc:
        log.warn(f"refs are published, but the bundle list for git --bundle-uri was not uploaded: {exc}")
    torrent_summary = None
    if torrent:
        torrent_summary = publishing.summary(torrent)
        t = time.monotonic()
        torrent_summary["seeding"] = publishing.seed(opts.torrent, torrent)
        timings["seed"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    return {
        "name": name,
        "store": store.describe(),
        "remote": log.redact_url(remote_url) if remote_url else None,
        "refs": new,
        "refs_deleted": stale,
        "previous_refs": old,
        "bundle": {"key": bundle_key, "url": entry.uri, "size": size, "sha256": sha256, "refs": len(header.refs)},
        "index": {"key": idx_key, "url": entry.idx_uri, "size": entry.idx_size, "sha256": entry.idx_sha256},
        "bundle_list_url": _url(opts.public_url, store.url_for(list_key), list_key),
        "creation_token": entry.creation_token,
        "incremental": {"key": f"{name}/bundles/{since.sha256}.bundle", "url": since.uri, "size": since.size,
                        "sha256": since.sha256, "base_sha256": since.base_sha256} if since else None,
        "torrent": torrent_summary,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def _incremental(
    git: Git, store: Store, name: str, previous: BundleEntry, refnames: list[str], workdir: Path,
    full: BundleEntry, public_url: str | None,
) -> BundleEntry | None:
    """The change since the previous release as a bundle, uploaded; None if there is none to make."""
    if previous.sha256 == full.sha256:
        return None
    with log.group("Creating the incremental bundle since the previous release"):
        tips = incremental.previous_tips(store, f"{name}/bundles/{previous.sha256}.bundle", previous)
        if tips is None:
            log.info("the previous release's bundle is not in this store: no incremental bundle")
            return None
        path = workdir / "since-previous.bundle"
        header = incremental.create(git, path, refnames, tips)
        if header is None:
            return None
        sha256 = bundle.file_sha256(path)
        key = f"{name}/bundles/{sha256}.bundle"
        _upload(store, [(key, path, BUNDLE_TYPE)])
        log.info(f"incremental bundle: {path.stat().st_size} bytes on top of {previous.sha256[:12]}")
        return BundleEntry(
            id=f"{name}-{sha256[:12]}", uri=_url(public_url, store.url_for(key), key),
            creation_token=full.creation_token - 1, sha256=sha256, size=path.stat().st_size,
            header_size=header.size, object_format=header.object_format, base_sha256=previous.sha256,
        )


def _url(public_url: str | None, store_url: str, key: str) -> str:
    return f"{public_url.rstrip('/')}/{key}" if public_url else store_url


def _local_mirror_refs(git: Git) -> dict[str, str]:
    lines = git.out("for-each-ref", "--format=%(refname) %(objectname)", "refs/mirrors/").splitlines()
    return known_mirror_refs(dict(line.split(" ", 1) for line in lines if " " in line))


def _previous_list(local: Git, remote_git: Git, remote_url: str | None, old: dict[str, str]) -> bytes | None:
    """The current bundle list blob, if it can be read; without it the release is simply not incremental."""
    refs = {k: v for k, v in old.items() if k == REF_BUNDLE_HTTP}
    if not refs:
        return None
    try:
        if remote_url:
            blobs, _ = read_mirror_blobs(remote_git, remote_url, refs, BlobCache(None))
        else:
            blobs = local_mirror_blobs(local, refs)
    except GitError as exc:
        log.warn(f"cannot read the current {REF_BUNDLE_HTTP}: {exc}; publishing without an incremental bundle")
        return None
    return blobs.get(REF_BUNDLE_HTTP)


def _previous_full(blob: bytes | None) -> BundleEntry | None:
    """The newest full bundle of the current list.

    Whoever can push refs/mirrors/* wrote that list: anything wrong with it (not a list,
    malformed URIs or numbers) is a warning and a publish that does not build on it.
    """
    if not blob:
        return None
    try:
        return parse_bundle_list(blob.decode("utf-8")).newest()
    except Exception as exc:  # hostile input: never a reason to fail the publish
        log.warn(f"ignoring the current {REF_BUNDLE_HTTP}: {exc}")
        return None


def _previous_token(previous: BundleEntry | None) -> int:
    """The creationToken the new release must exceed; a token too large to exceed is ignored."""
    if previous is None:
        return 0
    if not 0 <= previous.creation_token < MAX_CREATION_TOKEN:
        log.warn(f"ignoring the current list's creationToken {str(previous.creation_token)[:30]}: "
                 f"outside 0..{MAX_CREATION_TOKEN - 1}")
        return 0
    return previous.creation_token


def _upload(store: Store, items: list[tuple[str, Path, str]]) -> None:
    """Upload what the store lacks; keys are content-addressed, so a present key is complete."""
    for key, path, ctype in items:
        if store.size_of(key) == path.stat().st_size:
            log.info(f"{key} is already in the store")
            continue
        progress = Progress(f"upload {key.rsplit('/', 1)[-1]}", path.stat().st_size)
        store.put_file(key, path, ctype, progress)
        progress.close()
