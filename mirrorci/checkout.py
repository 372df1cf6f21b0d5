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

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import auth, lfs, log, submodules, verify
from .auth import DEFAULT_TOKEN_USER
from .cache import ObjectCache
from .deadline import DEFAULT_STALL, DEFAULT_TIMEOUT, Deadline
from .errors import GitError, MirrorciError, SourceFailed, Terminated, UsageError
from .gitcmd import Git
from .mirrorlist import MirrorSet, parse_mirror_blobs
from .remote import BlobCache, RemoteRefs, ls_remote, read_mirror_blobs, with_retries
from .s3config import S3Options
from .ssh import SshOptions
from .sources import SOURCES, FetchContext, Fetched, parse_preference
from .sources.git_mirror import drop_mirror_refs
from .verify import Verified

HAVE_PREFIX = "refs/mirrorci/have/"
DEFAULT_MAX_BUNDLE_SIZE = 64 << 30  # 64 GiB: far above any real repository, far below a disk-filling claim
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
    timeout: float = DEFAULT_TIMEOUT  # each mirror method's whole attempt
    stall_timeout: float = DEFAULT_STALL  # a transfer with no progress for this long is abandoned
    max_bundle_size: int = DEFAULT_MAX_BUNDLE_SIZE  # a bundle list claiming more is not downloaded
    s3: S3Options = field(default_factory=S3Options)
    token: str | None = None  # for origin only; see auth.py
    token_user: str = DEFAULT_TOKEN_USER
    persist_credentials: bool = False
    clean: bool = False  # empty a non-empty --path first, as actions/checkout does
    torrent: Any = None  # sources.torrent.TorrentOptions (daemon, time limit, client)
    commit: str | None = None  # leave this commit checked out (a CI event's), `ref` naming its branch
    fetch_depth: int = 0  # history fetched from origin when no mirror was used (0: all)
    fetch_tags: bool = True
    filter: str | None = None  # partial-clone filter for what comes from origin
    sparse_checkout: list[str] = field(default_factory=list)
    sparse_cone: bool = True
    submodules: str = "false"  # false, true (one level) or recursive
    lfs: bool = False
    ssh: SshOptions = field(default_factory=SshOptions)
    show_progress: bool = True
    set_safe_directory: bool = False
    same_owner_as: Path | None = None


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
    verified: dict[str, Any] | None = None  # what was hashed before the clone was declared good
    credentials_file: str | None = None  # with --persist-credentials: the config file the clone includes
    lfs: dict[str, Any] | None = None  # with --lfs: where the LFS objects came from
    submodules: list[dict[str, Any]] = field(default_factory=list)  # per submodule: path, commit, method, bytes
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


class _Target:
    """The --path directory, and how to put it back as it was if the checkout does not finish.

    With --clean, what the directory held is moved aside (same file system, so a
    rename) and only deleted once the checkout succeeded.
    """

    def __init__(self, path: Path, clean: bool) -> None:
        self.path = path
        self.created = False
        self.aside: Path | None = None
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"--path {path}: exists and is not a directory; choose another path")
            if any(path.iterdir()):
                if not clean:
                    raise UsageError(f"--path {path}: exists and is not an empty directory; choose another path, empty it, or pass --clean")
                self.aside = self._move_aside(path)
        else:
            path.mkdir(parents=True)
            self.created = True

    @staticmethod
    def _move_aside(path: Path) -> Path | None:
        """Move the contents next to the directory; where that is impossible (a mount point such as
        a container's workspace, a read-only parent), delete them in place as actions/checkout does."""
        try:
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.mirrorci-old-", dir=path.parent))
        except OSError:
            _empty_dir(path)
            return None
        try:
            for child in list(path.iterdir()):
                os.replace(child, aside / child.name)
        except OSError as exc:
            log.info(f"--clean: cannot keep the old contents aside ({exc.strerror}); deleting them")
            for child in list(aside.iterdir()):
                try:
                    os.replace(child, path / child.name)
                except OSError:
                    pass
            shutil.rmtree(aside, ignore_errors=True)
            _empty_dir(path)
            return None
        return aside

    def restore(self) -> None:
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        _empty_dir(self.path)
        if self.aside:
            for child in self.aside.iterdir():
                os.replace(child, self.path / child.name)
            self.aside.rmdir()

    def commit(self) -> None:
        if self.aside:
            shutil.rmtree(self.aside, ignore_errors=True)


@contextmanager
def _termination_unwinds() -> Iterator[None]:
    """SIGTERM (a CI system cancelling the job) unwinds like Ctrl-C, so temporary files and --path are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Clock:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


@dataclass
class _Attempt:
    """What one pass over the repository relied on besides origin, which decides what to verify and undo."""

    use_mirrors: bool
    cache: ObjectCache | None
    cache_lent: bool = False
    foreign: bool = False  # objects from a mirror or the cache are in the clone
    fast_pack: bool = False  # a pack with the publisher's index (not hashed by git) was installed
    covered: list[str] = field(default_factory=list)
    mirrors: MirrorSet | None = None  # origin's mirror list, once read


def checkout(opts: CheckoutOptions) -> CheckoutResult:
    if opts.verify not in VERIFY_MODES:
        raise UsageError(f"--verify must be one of {', '.join(VERIFY_MODES)}")
    torrent = opts.torrent
    prefer = parse_preference(opts.prefer, bool(torrent and (torrent.transmission or torrent.client != "auto")))
    opts.s3.validate()
    target_path = (opts.path or default_path(opts.remote_url)).absolute()
    result = CheckoutResult(path=str(target_path))
    with _termination_unwinds():
        target = _Target(target_path, opts.clean)
        try:
            _run(opts, prefer, target_path, result)
        except BaseException:
            target.restore()
            raise
        target.commit()
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
    if cache and _object_format(remote) != "sha1":
        log.warn("the runner cache holds sha1 objects; it is not used for this sha256 repository")
        cache = None
    if opts.no_mirrors:
        result.fallbacks.append({"method": "all", "reason": "--no-mirrors given"})
    attempt = _Attempt(use_mirrors=not opts.no_mirrors, cache=cache)
    try:
        _fill(opts, prefer, target, result, remote, origin_env, attempt, clock)
    except (SourceFailed, GitError) as exc:
        if not attempt.foreign:
            raise  # origin itself failed: nothing to fall back to
        _fall_back_after(exc, attempt, target, result)
        attempt = _Attempt(use_mirrors=False, cache=cache)
        _fill(opts, prefer, target, result, remote, origin_env, attempt, clock, lend_cache=False)
    _after_worktree(opts, target, origin_env, attempt, result)
    if opts.token and opts.persist_credentials:
        # Only now: every request to a mirror is over, so none could have read it from the clone's config.
        result.credentials_file = auth.persist(Git(target), opts.remote_url, opts.token, opts.token_user)
    if cache:
        with log.group("Updating the cache"):
            packs = cache.absorb(target / ".git", opts.remote_url, remote.tips(), attempt.covered, replace=attempt.fast_pack)
            log.info(f"{packs} new pack(s) kept in {cache.root}")
            clock.lap("cache")
    result.timings["total"] = time.monotonic() - started


def _after_worktree(opts: CheckoutOptions, target: Path, origin_env: dict[str, str], attempt: _Attempt,
                    result: CheckoutResult) -> None:
    """What actions/checkout does once the work tree is there: LFS files, then submodules."""
    if opts.lfs:
        with log.group("Fetching LFS objects"):
            settings = lfs.LfsSettings(allow_file_urls=opts.allow_file_urls, timeout=opts.timeout,
                                       stall_timeout=opts.stall_timeout, show_progress=opts.show_progress)
            result.lfs = lfs.fill_worktree(Git(target), origin_env, attempt.mirrors, settings)
    if opts.submodules != "false":
        result.submodules = submodules.update(opts, target, recursive=opts.submodules == "recursive")


def _fall_back_after(exc: MirrorciError, attempt: _Attempt, target: Path, result: CheckoutResult) -> None:
    """A mirror's or the cache's objects failed: undo everything and start again from origin alone."""
    used = result.method
    reason = log.redact(str(exc))
    result.fallbacks.append({"method": used, "reason": reason})
    log.warn(f"{used} objects not used: {reason}; checking out from origin alone")
    if attempt.cache and attempt.cache_lent and attempt.cache.implicated(getattr(exc, "oid", None)):
        attempt.cache.quarantine(reason)
        result.warnings.append(f"the runner cache failed verification and was set aside: {reason}")
    _empty_dir(target)
    result.method, result.mirror_uri, result.apply_path, result.cache = "origin", None, None, None
    result.bytes_from_mirror = result.bytes_from_origin = 0
    result.verified = None


def _object_format(remote: RemoteRefs) -> str:
    """Like git clone: the new repository takes origin's object format (sha1 or sha256)."""
    return "sha256" if len(next(iter(remote.tips().values()))) == 64 else "sha1"


def _fill(
    opts: CheckoutOptions, prefer: list[str], target: Path, result: CheckoutResult, remote: RemoteRefs,
    origin_env: dict[str, str], attempt: _Attempt, clock: _Clock, lend_cache: bool = True,
) -> None:
    """One pass: objects from the cache or a mirror (if allowed), the rest from origin, then verify and check out."""
    git = Git(target)
    git.run("init", "--quiet", f"--object-format={_object_format(remote)}")
    git.run("config", "remote.origin.url", opts.remote_url)
    git.run("config", "remote.origin.fetch", FETCH_REFSPECS[0])
    origin = git.with_env(origin_env)
    cache = attempt.cache
    if cache and lend_cache:
        cache.lend_to(target / ".git")
        attempt.cache_lent = attempt.foreign = True
    wanted = remote.tips()
    commit = _wanted_commit(opts.ref, remote)
    needed = set(wanted.values()) | ({commit} if commit else set())

    fetched: Fetched | None = None
    if attempt.cache_lent and not _missing(git, needed):
        result.method = "cache"
        result.cache = "every tip origin advertised is in the cache"
    elif attempt.use_mirrors:
        mirrors = attempt.mirrors = _load_mirrors(origin, opts, remote, result)
        clock.lap("mirror_list")
        chain = mirrors.bundle_list.chain() if mirrors.bundle_list else []
        if attempt.cache_lent and cache and chain and not mirrors.bundle_list.plan(cache.has_bundle):
            result.method = "cache"
            result.cache = "the newest bundle is already in the cache; only newer objects come from origin"
        elif mirrors.empty:
            result.fallbacks.append({"method": "all", "reason": "origin advertises no usable mirror under refs/mirrors/"})
        else:
            fetched = _try_sources(git, target, opts, prefer, mirrors, result, attempt)
            if fetched:
                attempt.foreign = True
                # A base installed with its published index while the cache was not lent: the
                # clone is self-contained, and its packs replace the cache's (see cache.py).
                attempt.fast_pack = "fast" in fetched.apply_path and not attempt.cache_lent
                if fetched.sha256 and fetched.sha256 in [b.sha256 for b in chain]:
                    # The cache will hold the chain up to the last bundle applied.
                    upto = [b.sha256 for b in chain].index(fetched.sha256) + 1
                    attempt.covered = [b.sha256 for b in chain[:upto]]
        clock.lap("mirror")

    try:
        if fetched:
            result.method = fetched.method
            result.mirror_uri = fetched.uri
            result.apply_path = fetched.apply_path or None
            result.bytes_from_mirror = fetched.bytes
            _write_haves(git, fetched.tips.values())
        drop_mirror_refs(git)
        missing = _missing(git, needed)
        if missing:
            result.final_fetch_reason = (
                f"origin has {len(missing)} tip(s) the mirror lacks" if fetched
                else f"origin has {len(missing)} tip(s) the cache lacks" if result.method == "cache"
                else "no mirror was used"
            )
            with log.group("Fetching the rest from origin"):
                before = git.pack_bytes()
                fetch_git = Git(target, config=("fetch.unpackLimit=1",), env=origin.env)
                where = log.redact_url(opts.remote_url)
                with_retries(lambda: fetch_git.run("fetch", "--quiet", "--prune", "--no-tags", "origin", *FETCH_REFSPECS),
                             f"fetching from {where}")
                if commit and not _has_objects(git, [commit]):
                    source = _extra_ref(opts.ref, remote) or commit
                    with_retries(lambda: fetch_git.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", source),
                                 f"fetching {source} from {where}")
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
        _set_head(git, opts.ref, remote, result)
        head = git.out("rev-parse", "HEAD")
        if attempt.foreign and commit and not _extra_ref(opts.ref, remote):
            _check_origin_serves(git, origin, opts.remote_url, head, opts.ref or head)
        verifier = _start_verification(git, opts, attempt, wanted, head) if attempt.foreign else None
        Git(target, config=WORKTREE_CONFIG).run("read-tree", "-u", "--reset", "HEAD")
        result.head = head
        clock.lap("checkout")
        if verifier:
            result.verified = verifier.result()
            clock.lap("verify")
            log.info(
                f"verified {result.verified['objects']} objects ({result.verified['scope']}) "
                f"in {result.verified['seconds']:.2f} s"
            )


class _Verifier:
    """Verification on the side, while the work tree is written: the two read the same objects."""

    def __init__(self, git: Git, tips: list[str], commit: str, scope: str) -> None:
        self.scope = scope
        self.outcome: Verified | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(git, tips, commit), daemon=True)
        self.thread.start()

    def _run(self, git: Git, tips: list[str], commit: str) -> None:
        try:
            self.outcome = verify.verify(git, tips, commit, self.scope)
        except BaseException as exc:
            self.outcome = exc

    def result(self) -> dict[str, Any]:
        self.thread.join()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return {"scope": self.scope, "objects": self.outcome.objects, "bytes": self.outcome.bytes,
                "seconds": round(self.outcome.seconds, 3)}


def _start_verification(git: Git, opts: CheckoutOptions, attempt: _Attempt, wanted: dict[str, str], head: str) -> _Verifier:
    # --verify full: git's indexing already hashed every pack the clone holds, unless the
    # runner cache lent its objects (some may have come with a publisher's index).
    scope = ("all" if attempt.cache_lent else "connected") if opts.verify == "full" else "relied-on"
    return _Verifier(git, sorted(set(wanted.values()) | {head}), head, scope)


def _check_origin_serves(git: Git, origin: Git, url: str, oid: str, ref: str) -> None:
    """A commit id given with --ref must be one origin can serve, as `git clone` + `git checkout` needs.

    Reachable from a branch or tag origin advertised: fine. Otherwise origin is asked
    for it by id (a one-commit fetch into a scratch repository), so a commit that only
    a mirror's bundle holds is never checked out.
    """
    if git.out("for-each-ref", "--count=1", "--contains", oid, "--format=%(refname)", "refs/remotes/origin", "refs/tags"):
        return
    with tempfile.TemporaryDirectory(prefix="mirrorci-ref-") as tmp:
        scratch = Git(Path(tmp), env=origin.env)
        scratch.run("init", "--quiet", "--bare", f"--object-format={'sha256' if len(oid) == 64 else 'sha1'}")
        if not scratch.ok("fetch", "--quiet", "--depth=1", "--filter=tree:0", "--no-tags", url, oid):
            raise UsageError(f"--ref {ref}: origin does not have that commit; give a branch, tag or a commit origin serves")


def _write_haves(git: Git, oids: Iterable[str]) -> None:
    """The mirror's tips as negotiation hints for the final fetch, under neutral names.

    A bundle's ref names are the mirror's word, not origin's: they are never written
    as refs. Only tips that exist here as commits or tags are kept.
    """
    wanted = sorted({oid for oid in oids if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", oid)})
    if not wanted:
        return
    types = git.out("cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(wanted) + "\n")
    present = [line.split()[0] for line in types.splitlines() if line.endswith((" commit", " tag"))]
    _write_refs(git, {f"{HAVE_PREFIX}{i}": oid for i, oid in enumerate(present)})


def _load_mirrors(git: Git, opts: CheckoutOptions, remote: RemoteRefs, result: CheckoutResult) -> MirrorSet:
    refs = remote.mirror_refs()
    if not refs:
        return MirrorSet()
    with log.group("Reading the mirror list"):
        try:
            blobs, fetched = read_mirror_blobs(git, opts.remote_url, refs, BlobCache(opts.cache_dir))
        except (MirrorciError, OSError, ValueError) as exc:
            result.warnings.append(f"cannot read refs/mirrors/* from origin: {exc}")
            log.warn(result.warnings[-1])
            return MirrorSet()
        result.mirror_blobs_fetched = fetched
        try:
            mirrors = parse_mirror_blobs(blobs, refs)
        except Exception as exc:  # whatever the blobs hold, they only ever cost the mirror
            result.warnings.append(f"ignoring refs/mirrors/*: {type(exc).__name__}: {exc}")
            log.warn(result.warnings[-1])
            return MirrorSet()
        for warning in mirrors.warnings:
            log.warn(warning)
        result.warnings += mirrors.warnings
        return mirrors


def _try_sources(
    git: Git, target: Path, opts: CheckoutOptions, prefer: list[str], mirrors: MirrorSet, result: CheckoutResult,
    attempt: _Attempt,
) -> Fetched | None:
    cache = attempt.cache if attempt.cache_lent else None

    def release_cache() -> None:
        # A pack whose index git did not compute must be alone in the object store: with the
        # cache's packs beside it, one id could have two contents and verification could read
        # the other one. A full bundle needs nothing from the cache anyway.
        if cache and attempt.cache_lent:
            cache.unlend(target / ".git")
            attempt.cache_lent = False

    ctx = FetchContext(
        git=git, repo_dir=target, mirrors=mirrors, verify=opts.verify,
        allow_file_urls=opts.allow_file_urls, s3=opts.s3, torrent=opts.torrent,
        deadline=Deadline(opts.timeout, opts.stall_timeout), max_bundle_size=opts.max_bundle_size,
        before_fast_path=release_cache,
    )
    if cache:
        ctx.have_bundle = cache.has_bundle
    for name in prefer:
        with log.group(f"Trying the {name} mirror"):
            try:
                ctx.deadline = ctx.deadline.restart()
                fetched = SOURCES[name].fetch(ctx)
                log.info(f"{name}: {fetched.bytes} bytes from {log.redact_url(fetched.uri)}")
                return fetched
            except SourceFailed as exc:
                reason = str(exc)
            except Exception as exc:  # one funnel: whatever a mirror does wrong is a fallback
                reason = f"{type(exc).__name__}: {exc}"
            _discard_partial(git)
            result.fallbacks.append({"method": name, "reason": log.redact(reason)})
            log.warn(f"{name} mirror not used: {log.redact(reason)}")
    log.warn("no mirror could be used; fetching everything from origin")
    return None


def _discard_partial(git: Git) -> None:
    try:
        drop_mirror_refs(git)
    except GitError as exc:
        log.warn(f"could not drop a failed mirror's refs: {exc}")


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


def _set_head(git: Git, ref: str | None, remote: RemoteRefs, result: CheckoutResult) -> None:
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
        git.run("config", f"branch.{branch}.remote", "origin")
        git.run("config", f"branch.{branch}.merge", full)
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
        return _set_head(git, first[0][len("refs/heads/"):], remote, result)
    git.run("update-ref", "--no-deref", "HEAD", oid)
    result.detached = True
