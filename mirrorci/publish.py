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

from . import auth, bundle, chain, log, retention
from .auth import DEFAULT_TOKEN_USER
from .errors import GitError, MirrorciError, UsageError
from .gitcmd import Git, open_repository
from .mirrorlist import (
    MAX_BLOB_BYTES,
    REF_BUNDLE_HTTP,
    REF_BUNDLE_MAGNET,
    REF_BUNDLE_TORRENT,
    REF_FETCH_GIT,
    REF_FETCH_HTTP,
    REF_LFS_HTTP,
    BundleEntry,
    BundleList,
    MirrorListError,
    parse_bundle_list,
    parse_url_list,
    render_url_list,
)
from .progress import Progress
from .registry import open_store, validate_settings
from .remote import (
    BlobCache,
    known_mirror_refs,
    local_mirror_blobs,
    ls_remote,
    push_refs_atomic,
    read_mirror_blobs,
    update_refs_locally,
    with_retries,
)
from .store import Store

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
    settings: dict[str, object] = field(default_factory=dict)  # per store's and method's back-end, by name (backend.py)
    # local: the repo's own branches and tags; remote: everything the remote has; auto: remote when pushing
    source: str = "auto"
    token: str | None = None  # for the remote only; see auth.py
    token_user: str = DEFAULT_TOKEN_USER
    max_chain: int = chain.DEFAULT_MAX_CHAIN  # increments on one base before a publish makes a new base
    collapse_fraction: float = chain.DEFAULT_COLLAPSE_FRACTION  # ... or once they weigh this much of the base
    grace: float = retention.DEFAULT_GRACE  # unreferenced files younger than this stay in the store
    lfs: str = "auto"  # LFS objects of the published tips: auto (when they use LFS), true or false; see lfs/upload.py


SOURCES = ("auto", "local", "remote")
# Refs that describe a bundle must not outlive it: a torrent of an earlier base goes.
DROPPED_WHEN_UNWRITTEN = (REF_BUNDLE_TORRENT, REF_BUNDLE_MAGNET, REF_LFS_HTTP)


@dataclass
class _Run:
    """One publish, filled in by its steps in order (see `_publish`)."""

    opts: PublishOptions
    workdir: Path
    local: Git  # the repository publish was pointed at
    git: Git  # the repository that is bundled and that moves the refs: `local`, or a snapshot of the remote
    remote_url: str | None  # None: the refs are written into `local` itself (--no-push)
    store: Store
    name: str
    url_lists: dict[str, list[str]]  # refs/mirrors/fetch/* to write: the git and http mirrors
    timings: dict[str, float] = field(default_factory=dict)
    old: dict[str, str] = field(default_factory=dict)  # refs/mirrors/* before this publish
    previous: BundleList | None = None  # the list origin's ref points at
    in_store: BundleList | None = None  # the list in the store (for retention, and for the tokens)
    refnames: list[str] = field(default_factory=list)
    object_format: str = "sha1"
    kind: str = ""  # "base" | "increment" | "nothing"
    reason: str = ""
    current: chain.Current = field(default_factory=chain.Current)
    made: chain.Increment | None = None
    elements: list[BundleEntry] = field(default_factory=list)  # the chain as the new list names it
    header: bundle.BundleHeader | None = None  # the newest element's
    files: tuple[Path, Path] | None = None  # a new base's bundle and index, for its torrent
    torrent: Any = None  # torrent.publishing.Prepared
    contents: dict[str, str | bytes] = field(default_factory=dict)  # refs/mirrors/* to write, by content
    new: dict[str, str] = field(default_factory=dict)  # ... by blob id
    stale: list[str] = field(default_factory=list)  # refs/mirrors/* to delete
    listed: bool = False  # the store's bundle-list is this publish's
    pruned: dict[str, Any] = field(default_factory=dict)
    seeding: dict[str, Any] | None = None
    lfs: dict[str, Any] | None = None  # what the LFS step published

    @property
    def list_key(self) -> str:
        return f"{self.name}/{LIST_KEY}"

    @property
    def torrent_options(self) -> Any:
        """The torrent back-end's settings (torrent.publishing.TorrentPublishOptions), None when not given."""
        return self.opts.settings.get("torrent")

    @property
    def want_torrent(self) -> bool:
        return self.torrent_options is not None and self.torrent_options.active

    @property
    def bundle_list(self) -> BundleList:
        return BundleList(bundles=self.elements)

    def url(self, key: str) -> str:
        """Where clients download `key`: under --public-url when given, else the store's own URL."""
        return _url(self.opts.public_url, self.store.url_for(key), key)


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
    refspecs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    with_retries(lambda: snap.run("fetch", "--quiet", "--no-tags", url, *refspecs),
                 f"fetching from {log.redact_url(url)}")
    head = ls_remote(snap, url).head_target
    if head and snap.ok("rev-parse", "--verify", "-q", head):
        snap.run("symbolic-ref", "HEAD", head)
    return snap


def publish(opts: PublishOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mirrorci-publish-") as tmp:
        return _publish(opts, Path(tmp))


def _publish(opts: PublishOptions, workdir: Path) -> dict[str, Any]:
    """The steps of a publish; each reads what the ones before it left in `run`.

    Each step is timed into the summary's `timings` (log.step). A step that advertises
    something more puts its ref's content in `run.contents` before `_write_refs`, which
    moves every ref in one atomic push.
    """
    started = time.monotonic()
    run = _start(opts, workdir)
    _read_refs(run)
    _fetch_remote(run)
    _choose(run)
    _build(run)
    _torrent(run)
    _lfs(run)
    _write_refs(run)
    _upload_list(run)
    _prune(run)
    _seed(run)
    run.timings["total"] = time.monotonic() - started
    return _summary(run)


def _check_options(opts: PublishOptions) -> None:
    """Everything about the options that can be refused before anything is read or written."""
    if opts.source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}")
    if opts.source == "remote" and not opts.push:
        raise UsageError("--source remote needs a remote to read from; drop --no-push or use --source local")
    if opts.max_chain < 0:
        raise UsageError("--max-chain must be 0 or more (0: every publish makes a new base)")
    if not 0 <= opts.collapse_fraction < float("inf"):
        raise UsageError("--collapse-fraction must be a number, 0 or more")
    if not 0 <= opts.grace < float("inf"):
        raise UsageError("--grace must be a number of seconds, 0 or more")
    if opts.lfs not in ("auto", "true", "false"):
        raise UsageError("--lfs must be one of auto, true, false")


def _start(opts: PublishOptions, workdir: Path) -> _Run:
    """Check the options, open the repository and the store, and name the mirror."""
    _check_options(opts)
    repo = open_repository(opts.repo)
    local = Git(repo.git_dir)
    remote_url = repo.remote_url(opts.remote) if opts.push else None
    remote_git = local.with_env(auth.origin_env(remote_url, opts.token, opts.token_user)) if remote_url else local
    url_lists = {REF_FETCH_GIT: _check_urls(opts.git_mirrors, ("git", "http", "https", "ssh"), "--git-mirror"),
                 REF_FETCH_HTTP: _check_urls(opts.http_mirrors, ("http", "https"), "--http-mirror")}
    if opts.public_url and urlsplit(opts.public_url).scheme not in ("http", "https"):
        raise UsageError("--public-url must be an http:// or https:// URL")
    validate_settings(opts.settings)
    store = open_store(opts.store, opts.settings)
    store.check()
    name = opts.name or default_name(remote_url, repo.top)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or not name.strip("."):
        raise UsageError("--name may only contain letters, digits, '.', '_' and '-' (and not only dots)")
    return _Run(opts, workdir, local, remote_git, remote_url, store, name, url_lists)


def _read_refs(run: _Run) -> None:
    """refs/mirrors/* as they are, and the bundle lists origin and the store hold."""
    with log.step("read_refs", run.timings, "Reading current mirror refs"):
        run.old = ls_remote(run.git, run.remote_url).mirror_refs() if run.remote_url else _local_mirror_refs(run.local)
        run.previous = _parse_list(_previous_list(run.local, run.git, run.remote_url, run.old), REF_BUNDLE_HTTP)
        run.in_store = _parse_list(run.store.read_prefix(run.list_key, MAX_BLOB_BYTES), f"the store's {run.list_key}")


def _fetch_remote(run: _Run) -> None:
    """Unless --source local, bundle what the remote has (a snapshot), not what this clone happens to hold."""
    if run.remote_url and run.opts.source != "local":
        title = f"Fetching every branch and tag of {log.redact_url(run.remote_url)}"
        with log.step("fetch_remote", run.timings, title):
            run.git = _snapshot_remote(run.local, run.git, run.remote_url, run.workdir / "snapshot.git")
    run.refnames = bundle.bundle_refnames(run.git)
    if not run.refnames:
        raise MirrorciError("the repository has no branches or tags to publish")
    run.object_format = run.git.out("rev-parse", "--show-object-format")


def _choose(run: _Run) -> None:
    """Increment, new base or nothing: see chain.py for the rules."""
    with log.step("decide", run.timings, "Deciding: increment or new base"):
        refs_now = bundle.current_refs(run.git, run.refnames)
        current = chain.current(run.store, run.name, run.previous, run.object_format, run.opts.max_chain)
        if current.usable:
            current = _check_tokens(current)
        torrent_key = chain.torrent_key(run.name, current.base.sha256) if current.usable else ""
        if current.usable and run.want_torrent and run.store.size_of(torrent_key) is None:
            current = chain.Current(reason="a torrent is requested and the chain's base has none")
        run.current = current
        run.kind, run.reason, run.made = _decide(run.opts, run.git, current, refs_now, run.object_format, run.workdir)
        what = {"base": "a new base", "increment": "one increment"}.get(run.kind, "nothing")
        log.info(f"publishing {what}: {run.reason}")


def _build(run: _Run) -> None:
    """Make and upload what was chosen; `run.elements` becomes the chain the new list names."""
    if run.kind == "base":
        entry, run.files, run.header = _make_base(run)
        run.elements = [entry]
    elif run.kind == "increment":
        entry, run.header = _upload_increment(run)
        run.elements = [*_relocated(run, run.current.elements), entry]
    else:
        run.elements = _relocated(run, run.current.elements)
        run.header = chain.read_tips(run.store, run.name, run.elements[-1])
    run.contents[REF_BUNDLE_HTTP] = run.bundle_list.render()


def _torrent(run: _Run) -> None:
    """The base's torrent: built for a new base, else the one an earlier publish uploaded."""
    if not run.want_torrent:
        return
    from .torrent import publishing

    base = run.elements[0]
    with log.step("torrent", run.timings, "The base's torrent"):
        tkey = chain.torrent_key(run.name, base.sha256)
        if run.files is not None:
            bundle_path, idx_path = run.files
            run.torrent = publishing.prepare(
                run.torrent_options, run.store, name=run.name, sha256=base.sha256, bundle_path=bundle_path,
                idx_path=idx_path, bundle_url=base.uri, workdir=run.workdir, torrent_url=run.url(tkey),
            )
        else:
            run.torrent = publishing.existing(run.store, tkey, run.url(tkey), run.name)
    run.contents[REF_BUNDLE_TORRENT] = run.torrent.built.data
    run.contents[REF_BUNDLE_MAGNET] = run.torrent.built.meta.magnet + "\n"


def _lfs(run: _Run) -> None:
    """The LFS objects the published tips point to, and refs/mirrors/lfs/http naming their manifest (lfs/upload.py)."""
    from .lfs.upload import publish_lfs

    with log.step("lfs", run.timings):
        published = publish_lfs(run.opts.lfs, run.git, run.local, run.store, run.name, run.opts.public_url,
                                run.remote_url)
    run.contents.update(published.refs)
    run.lfs = published.summary


def _write_refs(run: _Run) -> None:
    """Move refs/mirrors/* last, all at once, leasing their previous values (see the module docstring)."""
    run.contents.update({ref: render_url_list(urls) for ref, urls in run.url_lists.items() if urls})
    run.new = {ref: run.git.out("hash-object", "-w", "--stdin", input=text) for ref, text in run.contents.items()}
    run.stale = sorted(ref for ref in DROPPED_WHEN_UNWRITTEN if ref in run.old and ref not in run.new)
    with log.step("refs", run.timings, "Updating refs/mirrors/*"):
        if run.remote_url:
            push_refs_atomic(run.git, run.remote_url, run.new, run.old, delete=run.stale)
        else:
            update_refs_locally(run.git, run.new, run.old, delete=run.stale)


def _upload_list(run: _Run) -> None:
    """The list beside the bundles too, for `git clone --bundle-uri`; the refs are published either way."""
    try:
        run.store.put_bytes(run.list_key, run.bundle_list.render().encode(), "text/plain; charset=utf-8")
        run.listed = True
    except MirrorciError as exc:
        log.warn(f"refs are published, but the bundle list for git --bundle-uri was not uploaded: {exc}")


def _prune(run: _Run) -> None:
    """Delete what no list references any more (retention.py), once the store's list is this publish's."""
    if not run.listed:
        run.pruned = {"skipped": "the bundle list was not uploaded, so the store's list may still name older files"}
        return
    keep = retention.referenced_keys(run.name, [run.bundle_list, run.previous, run.in_store])
    with log.step("retention", run.timings, f"Retention: files no list references, older than {run.opts.grace:g} s"):
        run.pruned = retention.prune(run.store, run.name, keep, run.opts.grace)


def _seed(run: _Run) -> None:
    """Hand the torrent to the daemon (--transmission), which then drops torrents no list names."""
    if not run.torrent:
        return
    from .torrent import publishing

    run.seeding = publishing.summary(run.torrent)
    earlier = [run.previous, run.in_store]
    with log.step("seed", run.timings):
        run.seeding["seeding"] = publishing.seed(
            run.torrent_options, run.torrent, lambda: _torrent_hashes(run.store, run.name, earlier), run.opts.grace,
        )


def _summary(run: _Run) -> dict[str, Any]:
    """The JSON summary (`--json`, and the CI step's outputs)."""
    entry, base = run.elements[-1], run.elements[0]
    described = {**_describe(run.name, entry), "refs": len(run.header.refs) if run.header else 0}
    return {
        "name": run.name,
        "store": run.store.describe(),
        "remote": log.redact_url(run.remote_url) if run.remote_url else None,
        "published": run.kind,
        "reason": run.reason,
        "refs": run.new,
        "refs_deleted": run.stale,
        "previous_refs": run.old,
        "bundle": described,
        "index": _describe_index(run.name, entry),
        "base": _describe(run.name, base),
        "increment": described if run.kind == "increment" else None,
        "chain": [{"sha256": e.sha256, "size": e.size, "creation_token": e.creation_token,
                   "kind": "increment" if e.incremental else "base"} for e in run.elements],
        "chain_length": len(run.elements) - 1,
        "bundle_list_url": run.url(run.list_key),
        "creation_token": entry.creation_token,
        "retention": run.pruned,
        "torrent": run.seeding,
        "lfs": run.lfs,
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
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


def _make_base(run: _Run) -> tuple[BundleEntry, tuple[Path, Path], bundle.BundleHeader]:
    """A full bundle of every branch and tag, its index, both uploaded; the list entry that names them."""
    with log.group("Creating the base bundle"):
        with log.step("bundle", run.timings):
            bundle_path = run.workdir / "base.bundle"
            header = bundle.create(run.git, bundle_path, run.refnames)
            sha256 = bundle.file_sha256(bundle_path)
            size = bundle_path.stat().st_size
        log.info(f"bundle of {len(header.refs)} refs, {size} bytes, sha256 {sha256}")
        with log.step("index", run.timings):
            idx_path = bundle.make_index(run.git, bundle_path, header, run.workdir)
    with log.step("upload", run.timings, f"Uploading to {run.store.describe()}"):
        _upload(run.store, [(chain.idx_key(run.name, sha256), idx_path, "application/octet-stream"),
                            (chain.bundle_key(run.name, sha256), bundle_path, BUNDLE_TYPE)])
    entry = _uploaded_entry(run, sha256, bundle_path, idx_path, header, _next_token([run.previous, run.in_store]))
    return entry, (bundle_path, idx_path), header


def _uploaded_entry(
    run: _Run, sha256: str, bundle_path: Path, idx_path: Path, header: bundle.BundleHeader, creation_token: int,
    base_sha256: str = "", parent_sha256: str = "",
) -> BundleEntry:
    """The list entry of a bundle and its index, uploaded under their content-addressed keys."""
    return BundleEntry(
        id=f"{run.name}-{sha256[:12]}",
        uri=run.url(chain.bundle_key(run.name, sha256)),
        creation_token=creation_token,
        sha256=sha256,
        size=bundle_path.stat().st_size,
        pack_checksum=bundle.pack_checksum(bundle_path, header),
        header_size=header.size,
        idx_uri=run.url(chain.idx_key(run.name, sha256)),
        idx_sha256=bundle.file_sha256(idx_path),
        idx_size=idx_path.stat().st_size,
        object_format=header.object_format,
        base_sha256=base_sha256,
        parent_sha256=parent_sha256,
    )


def _upload_increment(run: _Run) -> tuple[BundleEntry, bundle.BundleHeader]:
    """The increment `_decide` built, indexed and uploaded; the list entry that names it."""
    made, last = run.made, run.current.elements[-1]
    assert made is not None
    with log.group("Indexing and uploading the increment"):
        path, header = made.path, made.header
        with log.step("index", run.timings):
            sha256 = bundle.file_sha256(path)
            idx_path = bundle.make_index(run.git, path, header, run.workdir)
        with log.step("upload", run.timings):
            _upload(run.store, [(chain.idx_key(run.name, sha256), idx_path, "application/octet-stream"),
                                (chain.bundle_key(run.name, sha256), path, BUNDLE_TYPE)])
        log.info(f"increment of {made.objects} objects, {path.stat().st_size} bytes, sha256 {sha256}, "
                 f"on {last.sha256[:12]}")
    entry = _uploaded_entry(
        run, sha256, path, idx_path, header, max(int(time.time()), last.creation_token + 1),
        base_sha256=run.current.base.sha256, parent_sha256=last.sha256,
    )
    return entry, header


def _relocated(run: _Run, elements: list[BundleEntry]) -> list[BundleEntry]:
    """The chain's elements as this publish lists them: ids and URLs from this store, everything else as listed."""
    return [
        dataclasses.replace(
            e, id=f"{run.name}-{e.sha256[:12]}", uri=run.url(chain.bundle_key(run.name, e.sha256)),
            idx_uri=run.url(chain.idx_key(run.name, e.sha256)) if e.has_index else "",
        )
        for e in elements
    ]


def _describe(name: str, e: BundleEntry) -> dict[str, Any]:
    return {"key": chain.bundle_key(name, e.sha256), "url": e.uri, "size": e.size, "sha256": e.sha256,
            "creation_token": e.creation_token,
            **({"base_sha256": e.base_sha256, "parent_sha256": e.parent_sha256} if e.incremental else {})}


def _describe_index(name: str, e: BundleEntry) -> dict[str, Any] | None:
    if not e.has_index:
        return None
    return {"key": chain.idx_key(name, e.sha256), "url": e.idx_uri, "size": e.idx_size, "sha256": e.idx_sha256}


def _torrent_hashes(store: Store, name: str, lists: list[BundleList | None]) -> set[str]:
    """Info hashes of the torrents of the bases the earlier lists name (read from the store).

    The daemon keeps these when it drops the mirror's other torrents.
    """
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
