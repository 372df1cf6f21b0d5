"""Fast checkout: objects from a mirror, the rest (if any) from origin, a normal clone at the end.

1. List origin's refs (first contact); read the mirror blobs (cached by blob id).
2. Try the mirror methods in order of preference; each failure is a recorded fallback.
3. If the mirror already holds every branch and tag tip origin advertised, write the
   refs and skip the final fetch; otherwise fetch what is missing from origin, with
   the mirror's tips as haves.
4. Leave what `git clone` would: origin remote, remote-tracking branches, tags,
   HEAD, and the requested ref checked out.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import git as gitpython

from . import auth, log
from .auth import DEFAULT_TOKEN_USER
from .cache import ObjectCache
from .errors import GitError, MirrorciError, SourceFailed, UsageError
from .gitcmd import Git
from .mirrorlist import MirrorSet, parse_mirror_blobs
from .remote import BlobCache, RemoteRefs, ls_remote, read_mirror_blobs
from .s3config import S3Options
from .sources import SOURCES, FetchContext, Fetched, parse_preference
from .sources.git_mirror import drop_mirror_refs

HAVE_PREFIX = "refs/mirrorci/have/"
FETCH_REFSPECS = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
VERIFY_MODES = ("auto", "full")
# Writing the work tree is the one step a mirror cannot shorten: use every core for it,
# and bound git's pack windows and delta cache so a large pack does not balloon memory.
WORKTREE_CONFIG = (
    "checkout.workers=0",
    "checkout.thresholdForParallelism=1000",
    "core.packedGitWindowSize=16m",
    "core.packedGitLimit=64m",
    "core.deltaBaseCacheLimit=32m",
)


@dataclass
class CheckoutOptions:
    remote_url: str
    path: Path | None = None
    ref: str | None = None
    prefer: str | None = None
    cache_dir: Path | None = None
    no_mirrors: bool = False
    allow_file_urls: bool = False
    verify: str = "auto"
    timeout: float = 60.0
    s3: S3Options = field(default_factory=S3Options)
    token: str | None = None  # for origin only; see auth.py
    token_user: str = DEFAULT_TOKEN_USER
    persist_credentials: bool = False
    clean: bool = False  # empty a non-empty --path first, as actions/checkout does
    torrent: Any = None  # sources.torrent.TorrentOptions (daemon, time limit, client)


@dataclass
class CheckoutResult:
    path: str
    method: str = "origin"
    mirror_uri: str | None = None
    apply_path: str | None = None
    bytes_from_mirror: int = 0
    bytes_from_origin: int = 0
    final_fetch: bool = True
    final_fetch_reason: str = ""
    mirror_blobs_fetched: int = 0
    head: str = ""
    ref: str = ""
    detached: bool = False
    cache: str | None = None  # what the runner's cache saved, if anything
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        return data


def default_path(url: str) -> Path:
    """Like `git clone`: the last path component without `.git`."""
    tail = re.split(r"[/:]", urlsplit(url).path.rstrip("/") if urlsplit(url).scheme else url.rstrip("/"))[-1]
    return Path(re.sub(r"\.git$", "", tail) or "repo")


def _empty_dir(path: Path) -> None:
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def _prepare_target(path: Path, clean: bool) -> bool:
    """Make sure the target is absent or empty; returns True if we created it."""
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"--path {path}: exists and is not a directory; choose another path")
        if any(path.iterdir()):
            if not clean:
                raise UsageError(f"--path {path}: exists and is not an empty directory; choose another path, empty it, or pass --clean")
            _empty_dir(path)
        return False
    path.mkdir(parents=True)
    return True


class _Clock:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def checkout(opts: CheckoutOptions) -> CheckoutResult:
    if opts.verify not in VERIFY_MODES:
        raise UsageError(f"--verify must be one of {', '.join(VERIFY_MODES)}")
    torrent = opts.torrent
    prefer = parse_preference(opts.prefer, bool(torrent and (torrent.transmission or torrent.client != "auto")))
    opts.s3.validate()
    target = (opts.path or default_path(opts.remote_url)).absolute()
    created = _prepare_target(target, opts.clean)
    result = CheckoutResult(path=str(target))
    try:
        _run(opts, prefer, target, result)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            _empty_dir(target)
        raise
    return result


def _run(opts: CheckoutOptions, prefer: list[str], target: Path, result: CheckoutResult) -> None:
    if not opts.cache_dir:
        return _run_with(opts, prefer, target, result, None)
    with ObjectCache(opts.cache_dir).locked() as cache:
        return _run_with(opts, prefer, target, result, cache)


def _run_with(
    opts: CheckoutOptions, prefer: list[str], target: Path, result: CheckoutResult, cache: ObjectCache | None
) -> None:
    started = time.monotonic()
    clock = _Clock(result.timings)
    origin_env = auth.origin_env(opts.remote_url, opts.token, opts.token_user)
    with log.group(f"Listing refs of {log.redact_url(opts.remote_url)}"):
        remote = ls_remote(Git(target, env=origin_env), opts.remote_url)
        if not remote.tips():
            raise MirrorciError(f"{log.redact_url(opts.remote_url)} has no branches or tags to check out")
        clock.lap("ls_remote")

    # Like git clone: the new repository takes origin's object format (sha1 or sha256).
    object_format = "sha256" if len(next(iter(remote.tips().values()))) == 64 else "sha1"
    repo = gitpython.Repo.init(target, object_format=object_format)
    with repo.config_writer() as cw:
        cw.set_value('remote "origin"', "url", opts.remote_url)
        cw.set_value('remote "origin"', "fetch", FETCH_REFSPECS[0])
        if opts.token and opts.persist_credentials:
            auth.persist(cw, opts.remote_url, opts.token, opts.token_user)
    git = Git(target)
    origin = git.with_env(origin_env)
    if cache and object_format != "sha1":
        log.warn("the runner cache holds sha1 objects; it is not used for this sha256 repository")
        cache = None
    if cache:
        cache.lend_to(target / ".git")
    wanted = remote.tips()
    commit = _wanted_commit(opts.ref, remote)

    fetched: Fetched | None = None
    covered: list[str] = []  # bundles whose objects the cache will hold after this checkout
    if cache and not _missing(git, set(wanted.values()) | ({commit} if commit else set())):
        result.method = "cache"
        result.cache = "every tip origin advertised is in the cache"
    elif opts.no_mirrors:
        result.fallbacks.append({"method": "all", "reason": "--no-mirrors given"})
    else:
        mirrors = _load_mirrors(origin, opts, remote, result)
        clock.lap("mirror_list")
        newest = mirrors.bundle_list.newest() if mirrors.bundle_list else None
        if cache and newest and cache.has_bundle(newest.sha256):
            result.method = "cache"
            result.cache = "the newest bundle is already in the cache; only newer objects come from origin"
        elif mirrors.empty:
            result.fallbacks.append({"method": "all", "reason": "origin advertises no usable mirror under refs/mirrors/"})
        else:
            fetched = _try_sources(git, target, opts, prefer, mirrors, result, cache)
            if fetched and fetched.sha256 and newest:
                # A full bundle, or an incremental one on top of what the cache had: either way
                # the cache now holds the newest release.
                covered = sorted({fetched.sha256, newest.sha256})
        clock.lap("mirror")

    try:
        if fetched:
            result.method = fetched.method
            result.mirror_uri = fetched.uri
            result.apply_path = fetched.apply_path or None
            result.bytes_from_mirror = fetched.bytes
            _write_refs(git, {HAVE_PREFIX + ref[5:]: oid for ref, oid in fetched.tips.items()})
        drop_mirror_refs(git)
        missing = _missing(git, set(wanted.values()) | ({commit} if commit else set()))
        if missing:
            result.final_fetch_reason = (
                f"origin has {len(missing)} tip(s) the mirror lacks" if fetched
                else f"origin has {len(missing)} tip(s) the cache lacks" if result.method == "cache"
                else "no mirror was used"
            )
            with log.group("Fetching the rest from origin"):
                before = git.pack_bytes()
                fetch_git = Git(target, config=("fetch.unpackLimit=1",), env=origin.env)
                fetch_git.run("fetch", "--quiet", "--prune", "--no-tags", "origin", *FETCH_REFSPECS)
                if commit and not _has_objects(git, [commit]):
                    source = _extra_ref(opts.ref, remote) or commit
                    fetch_git.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", source)
                result.bytes_from_origin = git.pack_bytes() - before
                log.info(f"{result.bytes_from_origin} bytes from origin")
        else:
            result.final_fetch = False
            result.final_fetch_reason = f"the {'mirror' if fetched else 'cache'} holds every branch and tag origin advertised"
            log.info(f"{result.final_fetch_reason}: no fetch from origin")
            _write_refs(git, {_tracking_name(ref): oid for ref, oid in wanted.items()})
        clock.lap("final_fetch")
    finally:
        git.delete_refs(HAVE_PREFIX)

    with log.group("Checking out"):
        _set_head(git, repo, opts.ref, remote, result)
        Git(target, config=WORKTREE_CONFIG).run("read-tree", "-u", "--reset", "HEAD")
        result.head = git.out("rev-parse", "HEAD")
        clock.lap("checkout")
    if cache:
        with log.group("Updating the cache"):
            packs = cache.absorb(target / ".git", opts.remote_url, wanted, covered)
            log.info(f"{packs} new pack(s) kept in {cache.root}")
            clock.lap("cache")
    result.timings["total"] = time.monotonic() - started


def _load_mirrors(git: Git, opts: CheckoutOptions, remote: RemoteRefs, result: CheckoutResult) -> MirrorSet:
    refs = remote.mirror_refs()
    if not refs:
        return MirrorSet()
    with log.group("Reading the mirror list"):
        try:
            blobs, fetched = read_mirror_blobs(git, opts.remote_url, refs, BlobCache(opts.cache_dir))
        except GitError as exc:
            result.warnings.append(f"cannot read refs/mirrors/* from origin: {exc}")
            log.warn(result.warnings[-1])
            return MirrorSet()
        result.mirror_blobs_fetched = fetched
        mirrors = parse_mirror_blobs(blobs, refs)
        for warning in mirrors.warnings:
            log.warn(warning)
        result.warnings += mirrors.warnings
        return mirrors


def _try_sources(
    git: Git, target: Path, opts: CheckoutOptions, prefer: list[str], mirrors: MirrorSet, result: CheckoutResult,
    cache: ObjectCache | None = None,
) -> Fetched | None:
    ctx = FetchContext(
        git=git, repo_dir=target, mirrors=mirrors, verify=opts.verify,
        allow_file_urls=opts.allow_file_urls, s3=opts.s3, timeout=opts.timeout, torrent=opts.torrent,
    )
    if cache:
        ctx.have_bundle = cache.has_bundle
    for name in prefer:
        with log.group(f"Trying the {name} mirror"):
            try:
                fetched = SOURCES[name].fetch(ctx)
                log.info(f"{name}: {fetched.bytes} bytes from {log.redact_url(fetched.uri)}")
                return fetched
            except SourceFailed as exc:
                reason = str(exc)
            except (OSError, GitError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            drop_mirror_refs(git)
            result.fallbacks.append({"method": name, "reason": log.redact(reason)})
            log.warn(f"{name} mirror not used: {reason}")
    log.warn("no mirror could be used; fetching everything from origin")
    return None


def _has_objects(git: Git, oids: list[str]) -> bool:
    return not _missing(git, set(oids))


def _missing(git: Git, oids: set[str]) -> set[str]:
    if not oids:
        return set()
    out = git.out("cat-file", "--batch-check=%(objectname)", input="\n".join(sorted(oids)) + "\n")
    return {line.split()[0] for line in out.splitlines() if line.endswith(" missing")}


def _tracking_name(ref: str) -> str:
    if ref.startswith("refs/heads/"):
        return "refs/remotes/origin/" + ref[len("refs/heads/"):]
    return ref


def _write_refs(git: Git, refs: dict[str, str]) -> None:
    if refs:
        lines = ["start"] + [f"update {ref} {oid}" for ref, oid in sorted(refs.items())] + ["prepare", "commit"]
        git.run("update-ref", "--stdin", input="\n".join(lines) + "\n")


def _extra_ref(ref: str | None, remote: RemoteRefs) -> str | None:
    """A full refname origin advertises outside branches and tags (refs/pull/1/merge, ...)."""
    if ref and ref.startswith("refs/") and ref in remote.refs and not _resolve_ref(ref, remote):
        return ref
    return None


def _wanted_commit(ref: str | None, remote: RemoteRefs) -> str | None:
    """The object a --ref needs that is no branch or tag tip: another ref's target, or an object id."""
    if not ref or _resolve_ref(ref, remote):
        return None
    extra = _extra_ref(ref, remote)
    if extra:
        return remote.refs[extra]
    if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", ref):
        return ref
    return None


def _resolve_ref(ref: str, remote: RemoteRefs) -> str | None:
    for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if candidate in remote.tips():
            return candidate
    return None


def _set_head(git: Git, repo: gitpython.Repo, ref: str | None, remote: RemoteRefs, result: CheckoutResult) -> None:
    default = remote.head_target if remote.head_target in remote.tips() else None
    if default:
        git.run("symbolic-ref", "refs/remotes/origin/HEAD", _tracking_name(default))
    full = _resolve_ref(ref, remote) if ref else default
    if ref and not full and not _wanted_commit(ref, remote):
        raise UsageError(f"--ref {ref!r}: origin has no such branch or tag; give a branch, tag or full commit id")
    if full and full.startswith("refs/heads/"):
        branch = full[len("refs/heads/"):]
        git.run("update-ref", f"refs/heads/{branch}", remote.tips()[full])
        git.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        with repo.config_writer() as cw:
            cw.set_value(f'branch "{branch}"', "remote", "origin")
            cw.set_value(f'branch "{branch}"', "merge", full)
        result.ref = full
        return
    if full:  # a tag: detached, as `git clone --branch <tag>` does
        oid = git.out("rev-parse", "--verify", f"{remote.tips()[full]}^{{commit}}")
        result.ref = full
    elif ref:
        target = _wanted_commit(ref, remote) or ref
        try:
            oid = git.out("rev-parse", "--verify", f"{target}^{{commit}}")
        except GitError:
            raise UsageError(f"--ref {ref}: origin does not have that commit") from None
        result.ref = oid
    else:
        # No default branch advertised: take the first branch, as a last resort.
        first = sorted(r for r in remote.tips() if r.startswith("refs/heads/"))
        if not first:
            raise MirrorciError("origin advertises no branch; pass --ref with a tag or commit")
        return _set_head(git, repo, first[0][len("refs/heads/"):], remote, result)
    git.run("update-ref", "--no-deref", "HEAD", oid)
    result.detached = True
