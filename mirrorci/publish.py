"""Publish: add what changed to the chain of bundles (or make a new base), upload it, then point refs/mirrors/* at it.

Order matters: artifacts are uploaded under content-addressed keys first, and the
refs move last in one atomic push with leases, so clients never see refs that
point at missing or half-written objects, and concurrent publishes cannot
silently overwrite each other.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import git as gitpython

from . import auth, bundle, chain, log, retention
from .auth import DEFAULT_TOKEN_USER
from .errors import GitError, MirrorciError, UsageError
from .gitcmd import Git
from .mirrorlist import (
    REF_BUNDLE_HTTP, REF_BUNDLE_MAGNET, REF_BUNDLE_TORRENT, REF_FETCH_GIT, REF_FETCH_HTTP, MAX_BLOB_BYTES, BundleEntry, BundleList,
    MirrorListError, parse_bundle_list, parse_url_list, render_url_list,
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
    max_chain: int = chain.DEFAULT_MAX_CHAIN  # increments on one base before a publish makes a new base
    collapse_fraction: float = chain.DEFAULT_COLLAPSE_FRACTION  # ... or once they weigh this much of the base
    grace: float = retention.DEFAULT_GRACE  # unreferenced files younger than this stay in the store

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


def _check_chain_options(opts: PublishOptions) -> None:
    if opts.max_chain < 0:
        raise UsageError("--max-chain must be 0 or more (0: every publish makes a new base)")
    if not 0 <= opts.collapse_fraction < float("inf"):
        raise UsageError("--collapse-fraction must be a number, 0 or more")
    if not 0 <= opts.grace < float("inf"):
        raise UsageError("--grace must be a number of seconds, 0 or more")


def _publish(opts: PublishOptions, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    timings: dict[str, float] = {}
    if opts.source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}")
    if opts.source == "remote" and not opts.push:
        raise UsageError("--source remote needs a remote to read from; drop --no-push or use --source local")
    _check_chain_options(opts)
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
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or not name.strip("."):
        raise UsageError("--name may only contain letters, digits, '.', '_' and '-' (and not only dots)")
    list_key = f"{name}/{LIST_KEY}"
    want_torrent = opts.torrent is not None and opts.torrent.active

    with log.group("Reading current mirror refs"):
        t = time.monotonic()
        old = ls_remote(remote_git, remote_url).mirror_refs() if remote_url else _local_mirror_refs(local)
        previous = _parse_list(_previous_list(local, remote_git, remote_url, old), REF_BUNDLE_HTTP)
        in_store = _parse_list(store.read_prefix(list_key, MAX_BLOB_BYTES), f"the store's {list_key}")
        timings["read_refs"] = time.monotonic() - t

    git = remote_git  # the repository that is bundled and that pushes the refs
    if remote_url and opts.source != "local":
        with log.group(f"Fetching every branch and tag of {log.redact_url(remote_url)}"):
            t = time.monotonic()
            git = _snapshot_remote(local, remote_git, remote_url, workdir / "snapshot.git")
            timings["fetch_remote"] = time.monotonic() - t

    refnames = bundle.bundle_refnames(git)
    if not refnames:
        raise MirrorciError("the repository has no branches or tags to publish")
    object_format = git.out("rev-parse", "--show-object-format")
    refs_now = bundle.current_refs(git, refnames)

    with log.group("Deciding: increment or new base"):
        t = time.monotonic()
        current = chain.current(store, name, previous, object_format, opts.max_chain)
        if current.usable:
            current = _check_tokens(current)
        if current.usable and want_torrent and store.size_of(chain.torrent_key(name, current.base.sha256)) is None:
            current = chain.Current(reason="a torrent is requested and the chain's base has none")
        kind, reason, made = _decide(opts, git, current, refs_now, object_format, workdir)
        log.info(f"publishing {'a new base' if kind == 'base' else 'one increment' if kind == 'increment' else 'nothing'}"
                 f": {reason}")
        timings["decide"] = time.monotonic() - t

    if kind == "base":
        entry, bundle_path, idx_path, header = _make_base(opts, git, store, name, refnames, workdir, timings,
                                                          [previous, in_store])
        elements = [entry]
    elif kind == "increment":
        assert isinstance(made, chain.Increment)
        entry, header = _upload_increment(opts, git, store, name, current, made, workdir, timings)
        elements = [*_relocated(opts, store, name, current.elements), entry]
    else:
        elements = _relocated(opts, store, name, current.elements)
        entry = elements[-1]
        header = chain.read_tips(store, name, entry)
    bundle_list = BundleList(bundles=elements).render()
    base = elements[0]

    torrent = None
    if want_torrent:
        from .torrent import publishing

        with log.group("The base's torrent"):
            t = time.monotonic()
            tkey = chain.torrent_key(name, base.sha256)
            turl = _url(opts.public_url, store.url_for(tkey), tkey)
            if kind == "base":
                torrent = publishing.prepare(
                    opts.torrent, store, name=name, sha256=base.sha256, bundle_path=bundle_path, idx_path=idx_path,
                    bundle_url=base.uri, workdir=workdir, torrent_url=turl,
                )
            else:
                torrent = publishing.existing(store, tkey, turl, name)
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
    # Refs that describe a bundle must not outlive it: a torrent of an earlier base goes.
    stale = sorted(ref for ref in (REF_BUNDLE_TORRENT, REF_BUNDLE_MAGNET) if ref in old and ref not in new)

    with log.group("Updating refs/mirrors/*"):
        t = time.monotonic()
        if remote_url:
            push_refs_atomic(git, remote_url, new, old, delete=stale)
        else:
            update_refs_locally(git, new, old, delete=stale)
        timings["refs"] = time.monotonic() - t

    listed = True
    try:
        store.put_bytes(list_key, bundle_list.encode(), "text/plain; charset=utf-8")
    except MirrorciError as exc:
        listed = False
        log.warn(f"refs are published, but the bundle list for git --bundle-uri was not uploaded: {exc}")

    keep = retention.referenced_keys(name, [BundleList(bundles=elements), previous, in_store])
    if listed:
        with log.group(f"Retention: files no list references, older than {opts.grace:g} s"):
            t = time.monotonic()
            pruned = retention.prune(store, name, keep, opts.grace)
            timings["retention"] = time.monotonic() - t
    else:
        pruned = {"skipped": "the bundle list was not uploaded, so the store's list may still name older files"}

    torrent_summary = None
    if torrent:
        torrent_summary = publishing.summary(torrent)
        t = time.monotonic()
        torrent_summary["seeding"] = publishing.seed(
            opts.torrent, torrent, lambda: _torrent_hashes(store, name, [previous, in_store]), opts.grace,
        )
        timings["seed"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    described = {**_describe(opts, store, name, entry), "refs": len(header.refs) if header else 0}
    return {
        "name": name,
        "store": store.describe(),
        "remote": log.redact_url(remote_url) if remote_url else None,
        "published": kind,
        "reason": reason,
        "refs": new,
        "refs_deleted": stale,
        "previous_refs": old,
        "bundle": described,
        "index": _describe_index(opts, store, name, entry),
        "base": _describe(opts, store, name, base),
        "increment": described if kind == "increment" else None,
        "chain": [{"sha256": e.sha256, "size": e.size, "creation_token": e.creation_token,
                   "kind": "increment" if e.incremental else "base"} for e in elements],
        "chain_length": len(elements) - 1,
        "bundle_list_url": _url(opts.public_url, store.url_for(list_key), list_key),
        "creation_token": entry.creation_token,
        "retention": pruned,
        "torrent": torrent_summary,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def _decide(
    opts: PublishOptions, git: Git, current: chain.Current, refs_now: list[tuple[str, str]], object_format: str,
    workdir: Path,
) -> tuple[str, str, chain.Increment | None]:
    """("base" | "increment" | "nothing", why, the increment built)."""
    if not current.usable:
        return "base", current.reason, None
    reason = chain.length_reason(current, opts.max_chain)
    if reason:
        return "base", reason, None
    if sorted(refs_now) == sorted(current.tips):
        return "nothing", "no branch or tag changed since the chain's last bundle", None
    made = chain.build_increment(git, workdir / "increment.bundle", refs_now, current.tips, object_format)
    if isinstance(made, str):
        return "base", made, None
    if made.objects == 0:
        return "nothing", "no new objects since the chain's last bundle (clients take ref changes from origin)", None
    reason = chain.weight_reason(current, made.path.stat().st_size, opts.collapse_fraction)
    if reason:
        return "base", reason, None
    return "increment", f"increment {len(current.elements)} on base {current.base.sha256[:12]}", made


def _check_tokens(current: chain.Current) -> chain.Current:
    """A chain whose creationTokens cannot be exceeded any more cannot take another element."""
    last = current.elements[-1].creation_token
    if 0 <= current.base.creation_token and last < MAX_CREATION_TOKEN - 1:
        return current
    log.warn(f"ignoring the current list's creationToken {str(last)[:30]}: outside 0..{MAX_CREATION_TOKEN - 2}")
    return chain.Current(reason="the current list's creationTokens cannot be continued")


def _next_token(after: list[BundleList | None]) -> int:
    """Above every token the lists used (that can still be exceeded), and at least the current time."""
    token = int(time.time())
    for listed in after:
        for b in listed.bundles if listed else []:
            if 0 <= b.creation_token < MAX_CREATION_TOKEN:
                token = max(token, b.creation_token + 1)
            else:
                log.warn(f"ignoring the current list's creationToken {str(b.creation_token)[:30]}: "
                         f"outside 0..{MAX_CREATION_TOKEN - 1}")
    return token


def _make_base(
    opts: PublishOptions, git: Git, store: Store, name: str, refnames: list[str], workdir: Path,
    timings: dict[str, float], earlier: list[BundleList | None],
) -> tuple[BundleEntry, Path, Path, bundle.BundleHeader]:
    with log.group("Creating the base bundle"):
        t = time.monotonic()
        bundle_path = workdir / "base.bundle"
        header = bundle.create(git, bundle_path, refnames)
        sha256 = bundle.file_sha256(bundle_path)
        size = bundle_path.stat().st_size
        timings["bundle"] = time.monotonic() - t
        log.info(f"bundle of {len(header.refs)} refs, {size} bytes, sha256 {sha256}")
        t = time.monotonic()
        idx_path = bundle.make_index(git, bundle_path, header, workdir)
        timings["index"] = time.monotonic() - t
    bkey, ikey = chain.bundle_key(name, sha256), chain.idx_key(name, sha256)
    with log.group(f"Uploading to {store.describe()}"):
        t = time.monotonic()
        _upload(store, [(ikey, idx_path, "application/octet-stream"), (bkey, bundle_path, BUNDLE_TYPE)])
        timings["upload"] = time.monotonic() - t
    entry = _uploaded_entry(opts, store, name, sha256, bundle_path, idx_path, header, _next_token(earlier))
    return entry, bundle_path, idx_path, header


def _uploaded_entry(
    opts: PublishOptions, store: Store, name: str, sha256: str, bundle_path: Path, idx_path: Path,
    header: bundle.BundleHeader, creation_token: int, base_sha256: str = "", parent_sha256: str = "",
) -> BundleEntry:
    """The list entry of a bundle and its index, uploaded under their content-addressed keys."""
    bkey, ikey = chain.bundle_key(name, sha256), chain.idx_key(name, sha256)
    return BundleEntry(
        id=f"{name}-{sha256[:12]}",
        uri=_url(opts.public_url, store.url_for(bkey), bkey),
        creation_token=creation_token,
        sha256=sha256,
        size=bundle_path.stat().st_size,
        pack_checksum=bundle.pack_checksum(bundle_path, header),
        header_size=header.size,
        idx_uri=_url(opts.public_url, store.url_for(ikey), ikey),
        idx_sha256=bundle.file_sha256(idx_path),
        idx_size=idx_path.stat().st_size,
        object_format=header.object_format,
        base_sha256=base_sha256,
        parent_sha256=parent_sha256,
    )


def _upload_increment(
    opts: PublishOptions, git: Git, store: Store, name: str, current: chain.Current, made: chain.Increment, workdir: Path,
    timings: dict[str, float],
) -> tuple[BundleEntry, bundle.BundleHeader]:
    with log.group("Indexing and uploading the increment"):
        t = time.monotonic()
        path, header = made.path, made.header
        sha256 = bundle.file_sha256(path)
        idx_path = bundle.make_index(git, path, header, workdir)
        timings["index"] = time.monotonic() - t
        bkey, ikey = chain.bundle_key(name, sha256), chain.idx_key(name, sha256)
        t = time.monotonic()
        _upload(store, [(ikey, idx_path, "application/octet-stream"), (bkey, path, BUNDLE_TYPE)])
        timings["upload"] = time.monotonic() - t
        log.info(f"increment of {made.objects} objects, {path.stat().st_size} bytes, sha256 {sha256}, "
                 f"on {current.elements[-1].sha256[:12]}")
    entry = _uploaded_entry(
        opts, store, name, sha256, path, idx_path, header,
        max(int(time.time()), current.elements[-1].creation_token + 1),
        base_sha256=current.base.sha256, parent_sha256=current.elements[-1].sha256,
    )
    return entry, header


def _relocated(opts: PublishOptions, store: Store, name: str, elements: list[BundleEntry]) -> list[BundleEntry]:
    """The chain's elements as this publish lists them: ids and URLs from this store, everything else as listed."""
    out = []
    for e in elements:
        bkey, ikey = chain.bundle_key(name, e.sha256), chain.idx_key(name, e.sha256)
        out.append(dataclasses.replace(
            e, id=f"{name}-{e.sha256[:12]}", uri=_url(opts.public_url, store.url_for(bkey), bkey),
            idx_uri=_url(opts.public_url, store.url_for(ikey), ikey) if e.has_index else "",
        ))
    return out


def _describe(opts: PublishOptions, store: Store, name: str, e: BundleEntry) -> dict[str, Any]:
    return {"key": chain.bundle_key(name, e.sha256), "url": e.uri, "size": e.size, "sha256": e.sha256,
            "creation_token": e.creation_token,
            **({"base_sha256": e.base_sha256, "parent_sha256": e.parent_sha256} if e.incremental else {})}


def _describe_index(opts: PublishOptions, store: Store, name: str, e: BundleEntry) -> dict[str, Any] | None:
    if not e.has_index:
        return None
    return {"key": chain.idx_key(name, e.sha256), "url": e.idx_uri, "size": e.idx_size, "sha256": e.idx_sha256}


def _torrent_hashes(store: Store, name: str, lists: list[BundleList | None]) -> set[str]:
    """Info hashes of the torrents of the bases the earlier lists name (read from the store), for the daemon's retention."""
    from .torrent import TorrentError, make

    hashes = set()
    for sha in {b.sha256 for listed in lists if listed for b in listed.bundles if not b.incremental}:
        data = store.read_prefix(chain.torrent_key(name, sha), MAX_BLOB_BYTES)
        if data:
            try:
                hashes.add(make.parse(data).info_hash.lower())
            except TorrentError:
                continue
    return hashes


def _url(public_url: str | None, store_url: str, key: str) -> str:
    return f"{public_url.rstrip('/')}/{key}" if public_url else store_url


def _local_mirror_refs(git: Git) -> dict[str, str]:
    lines = git.out("for-each-ref", "--format=%(refname) %(objectname)", "refs/mirrors/").splitlines()
    return known_mirror_refs(dict(line.split(" ", 1) for line in lines if " " in line))


def _previous_list(local: Git, remote_git: Git, remote_url: str | None, old: dict[str, str]) -> bytes | None:
    """The current bundle list blob, if it can be read; without it the publish makes a new base."""
    refs = {k: v for k, v in old.items() if k == REF_BUNDLE_HTTP}
    if not refs:
        return None
    try:
        if remote_url:
            blobs, _ = read_mirror_blobs(remote_git, remote_url, refs, BlobCache(None))
        else:
            blobs = local_mirror_blobs(local, refs)
    except GitError as exc:
        log.warn(f"cannot read the current {REF_BUNDLE_HTTP}: {exc}; publishing a new base")
        return None
    return blobs.get(REF_BUNDLE_HTTP)


def _parse_list(blob: bytes | None, what: str) -> BundleList | None:
    """A bundle list read back (from origin's ref or from the store), or None.

    Whoever can push refs/mirrors/* (or write the store) wrote it: anything wrong with it
    (not a list, malformed URIs or numbers) is a warning and a publish that does not build on it.
    """
    if not blob:
        return None
    try:
        if len(blob) > MAX_BLOB_BYTES:
            raise MirrorListError(f"{len(blob)} bytes is over the {MAX_BLOB_BYTES} byte limit")
        return parse_bundle_list(blob.decode("utf-8"))
    except Exception as exc:  # hostile input: never a reason to fail the publish
        log.warn(f"ignoring {what}: {exc}")
        return None


def _upload(store: Store, items: list[tuple[str, Path, str]]) -> None:
    """Upload what the store lacks; keys are content-addressed, so a present key is complete."""
    for key, path, ctype in items:
        if store.size_of(key) == path.stat().st_size:
            log.info(f"{key} is already in the store")
            continue
        progress = Progress(f"upload {key.rsplit('/', 1)[-1]}", path.stat().st_size)
        store.put_file(key, path, ctype, progress)
        progress.close()
