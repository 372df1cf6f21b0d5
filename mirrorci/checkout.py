"""Fast checkout: objects from a mirror, the rest (if any) from origin, a normal clone at the end.

1. List origin's refs (first contact); read the mirror blobs (cached by blob id).
2. Use what is already here (a clone of the same origin in --path, the runner cache),
   else try the mirror methods in order of preference; each failure is a recorded fallback.
3. If the clone now holds every branch and tag tip origin advertised, write the refs
   and skip the final fetch; otherwise fetch what is missing from origin, with the
   mirror's tips as haves (or, with no mirror at all, what --fetch-depth and --filter ask).
4. Leave what `git clone` would: origin remote, remote-tracking branches, tags,
   HEAD, and the requested ref checked out; then LFS files and submodules.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import auth, lfs, log, origin_fetch, ownership, progress, refnames, ssh, submodules, worktree
from .auth import DEFAULT_TOKEN_USER
from .cache import ObjectCache
from .deadline import DEFAULT_STALL, DEFAULT_TIMEOUT, Deadline
from .errors import GitError, MirrorciError, SourceFailed, Terminated, UsageError
from .gitcmd import Git
from .mirrorlist import MirrorSet, parse_mirror_blobs
from .registry import METHODS, parse_preference, validate_settings
from .remote import BlobCache, RemoteRefs, ls_remote, read_mirror_blobs
from .s3config import S3Options
from .sources import FetchContext, Fetched
from .ssh import SshOptions
from .target import Target, empty_dir, record_bundles, recorded_bundles

HAVE_PREFIX = "refs/mirrorci/have/"
DEFAULT_MAX_BUNDLE_SIZE = 64 << 30  # 64 GiB: far above any real repository, far below a disk-filling claim
VERIFY_MODES = ("auto", "full")
SUBMODULE_MODES = ("false", "true", "recursive")


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
    settings: dict[str, object] = field(default_factory=dict)  # per mirror method's back-end, by name (backend.py)
    token: str | None = None  # for origin only; see auth.py
    token_user: str = DEFAULT_TOKEN_USER
    persist_credentials: bool = False
    clean: bool = False  # empty a non-empty --path first, as actions/checkout does
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
    cache: str | None = None  # what the runner's cache or the reused workspace saved, if anything
    workspace: str = "new"  # new, reused (a clone of the same origin updated in place) or replaced (why)
    verified: dict[str, Any] | None = None  # what was hashed before the clone was declared good
    credentials_file: str | None = None  # with --persist-credentials: the config file the clone includes
    lfs: dict[str, Any] | None = None  # with --lfs: where the LFS objects came from
    submodules: list[dict[str, Any]] = field(default_factory=list)  # per submodule: path, commit, method, bytes
    cleanup_files: list[str] = field(default_factory=list)  # submodules' persisted credentials, for the post step
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


@dataclass
class _Attempt:
    """What one pass over the repository relied on besides origin, which decides what to verify and undo."""

    use_mirrors: bool
    cache: ObjectCache | None
    reused: bool = False  # filling a clone that was already in --path (objects, refs, index)
    cache_lent: bool = False
    foreign: bool = False  # objects from a mirror, the cache or the old workspace are in the clone
    fast_pack: bool = False  # a pack with the publisher's index (not hashed by git) was installed
    covered: list[str] = field(default_factory=list)  # sha256 of the chain's bundles the clone holds
    mirrors: MirrorSet | None = None  # origin's mirror list, once read
    have_bundle: Callable[[str], bool] = lambda sha256: False  # bundles already here (cache, workspace)

    @property
    def local_objects(self) -> str | None:
        """Where objects were before any download: "workspace", "cache" or None."""
        return "workspace" if self.reused else "cache" if self.cache_lent else None


def _validate(opts: CheckoutOptions) -> None:
    if opts.verify not in VERIFY_MODES:
        raise UsageError(f"--verify must be one of {', '.join(VERIFY_MODES)}")
    if opts.commit and not refnames.OID.fullmatch(opts.commit):
        raise UsageError(f"--commit {opts.commit!r}: give a full commit id (40 or 64 hex digits)")
    if opts.submodules not in SUBMODULE_MODES:
        raise UsageError(f"--submodules must be one of {', '.join(SUBMODULE_MODES)}")
    if opts.fetch_depth < 0:
        raise UsageError("--fetch-depth: give 0 (the whole history) or a positive number of commits")
    if opts.filter is not None and not re.fullmatch(r"[a-z]+(:[A-Za-z0-9=+._-]+)?", opts.filter):
        raise UsageError(f"--filter {opts.filter!r}: give a git filter spec such as blob:none or tree:0")
    bad = [p for p in opts.sparse_checkout if not p.strip() or "\n" in p]
    if bad:
        raise UsageError("--sparse-checkout: give one non-empty path or pattern per value")


def checkout(opts: CheckoutOptions) -> CheckoutResult:
    _validate(opts)
    prefer = parse_preference(opts.prefer, opts.settings)
    validate_settings(opts.settings)
    target_path = (opts.path or default_path(opts.remote_url)).absolute()
    result = CheckoutResult(path=str(target_path))
    progress.show(opts.show_progress)
    if opts.lfs:
        lfs.require_git_lfs(Git())  # before anything is downloaded or written
    with _termination_unwinds():
        target = Target(target_path, opts.clean, opts.remote_url)
        result.workspace = target.state
        try:
            _run(opts, prefer, target, result)
        except BaseException:
            target.restore()
            raise
        target.commit()
    if opts.set_safe_directory:
        ownership.trust(target_path)
    if opts.same_owner_as:
        ownership.give_to_owner_of(opts.same_owner_as, target_path)
    return result


def _run(opts: CheckoutOptions, prefer: list[str], target: Target, result: CheckoutResult) -> None:
    with ssh.session(opts.ssh) as ssh_env:
        if not opts.cache_dir:
            return _run_with(opts, prefer, target, result, None, ssh_env)
        with ObjectCache(opts.cache_dir).locked() as cache:
            return _run_with(opts, prefer, target, result, cache, ssh_env)


def _run_with(
    opts: CheckoutOptions, prefer: list[str], target: Target, result: CheckoutResult, cache: ObjectCache | None,
    ssh_env: dict[str, str],
) -> None:
    started = time.monotonic()
    timings = result.timings
    origin_env = {**auth.origin_env(opts.remote_url, opts.token, opts.token_user), **ssh_env}
    with log.step("ls_remote", timings, f"Listing refs of {log.redact_url(opts.remote_url)}"):
        remote = ls_remote(Git(target.path, env=origin_env), opts.remote_url)
        if not remote.tips():
            raise MirrorciError(f"{log.redact_url(opts.remote_url)} has no branches or tags to check out")
    if cache and _object_format(remote) != "sha1":
        log.warn("the runner cache holds sha1 objects; it is not used for this sha256 repository")
        cache = None
    if opts.no_mirrors:
        result.fallbacks.append({"method": "all", "reason": "--no-mirrors given"})
    attempt = _first_attempt(opts, target, cache)
    try:
        _fill(opts, prefer, target.path, result, remote, origin_env, attempt)
    except (SourceFailed, GitError) as exc:
        if not attempt.foreign:
            raise  # origin itself failed: nothing to fall back to
        _fall_back_after(exc, attempt, target.path, result)
        # LFS objects are checked one by one against their oids: the mirror stays usable for them.
        attempt = _Attempt(use_mirrors=False, cache=cache, mirrors=attempt.mirrors)
        _fill(opts, prefer, target.path, result, remote, origin_env, attempt, lend_cache=False)
    record_bundles(target.path / ".git", attempt.covered)
    _after_worktree(opts, target.path, origin_env, attempt, result)
    if opts.token and opts.persist_credentials:
        # Only now: every request to a mirror is over, so none could have read it from the clone's config.
        result.credentials_file = auth.persist(Git(target.path), opts.remote_url, opts.token, opts.token_user)
    if opts.ssh.key and opts.persist_credentials:
        result.credentials_file = ssh.persist(Git(target.path), opts.ssh) or result.credentials_file
    if cache and not attempt.reused:
        with log.step("cache", timings, "Updating the cache"):
            packs = cache.absorb(target.path / ".git", opts.remote_url, remote.tips(), attempt.covered,
                                 replace=attempt.fast_pack)
            log.info(f"{packs} new pack(s) kept in {cache.root}")
    result.timings["total"] = time.monotonic() - started


def _first_attempt(opts: CheckoutOptions, target: Target, cache: ObjectCache | None) -> _Attempt:
    """A clone updated in place knows which bundles it holds; otherwise the cache does."""
    attempt = _Attempt(use_mirrors=not opts.no_mirrors, cache=cache, reused=target.reused)
    if target.reused:
        held = recorded_bundles(target.path / ".git")
        attempt.have_bundle = held.__contains__
        attempt.covered = sorted(held)
        attempt.foreign = True
    elif cache:
        attempt.have_bundle = cache.has_bundle
    return attempt


def _after_worktree(opts: CheckoutOptions, target: Path, origin_env: dict[str, str], attempt: _Attempt,
                    result: CheckoutResult) -> None:
    """What actions/checkout does once the work tree is there: LFS files, then submodules."""
    if opts.lfs:
        with log.group("Fetching LFS objects"):
            settings = lfs.LfsSettings(allow_file_urls=opts.allow_file_urls, timeout=opts.timeout,
                                       stall_timeout=opts.stall_timeout, show_progress=opts.show_progress,
                                       s3=_s3_settings(opts))
            result.lfs = lfs.fill_worktree(Git(target), origin_env, attempt.mirrors, settings)
    if opts.submodules != "false":
        result.submodules = submodules.update(opts, target, recursive=opts.submodules == "recursive")
        result.cleanup_files = _persisted_by(result.submodules)


def _persisted_by(rows: list[dict[str, Any]]) -> list[str]:
    """Each submodule's persisted credentials file, and the ssh key files beside it (see ssh.persist)."""
    files: list[str] = []
    for row in rows:
        files += row.get("cleanup_files") or []
        named = row.get("credentials_file")
        if named:
            files += [named] + [named.removesuffix(".config") + suffix for suffix in (".key", ".known_hosts")]
    return sorted(set(files))


def _s3_settings(opts: CheckoutOptions) -> S3Options:
    """The s3 back-end's settings, for LFS objects on an s3:// mirror."""
    found = opts.settings.get("s3")
    return found if isinstance(found, S3Options) else S3Options()


def _fall_back_after(exc: MirrorciError, attempt: _Attempt, target: Path, result: CheckoutResult) -> None:
    """A mirror's, the cache's or the old workspace's objects failed: undo everything, start again from origin alone."""
    used = result.method
    reason = log.redact(str(exc))
    result.fallbacks.append({"method": used, "reason": reason})
    log.warn(f"{used} objects not used: {reason}; checking out from origin alone")
    if attempt.cache and attempt.cache_lent and attempt.cache.implicated(getattr(exc, "oid", None)):
        attempt.cache.quarantine(reason)
        result.warnings.append(f"the runner cache failed verification and was set aside: {reason}")
    empty_dir(target)
    if attempt.reused:
        result.workspace = f"replaced ({reason})"
    result.method, result.mirror_uri, result.apply_path, result.cache = "origin", None, None, None
    result.bytes_from_mirror = result.bytes_from_origin = 0
    result.verified = None


def _object_format(remote: RemoteRefs) -> str:
    """Like git clone: the new repository takes origin's object format (sha1 or sha256)."""
    return "sha256" if len(next(iter(remote.tips().values()))) == 64 else "sha1"


def _prepare(git: Git, opts: CheckoutOptions, remote: RemoteRefs, attempt: _Attempt, lend_cache: bool) -> None:
    """A new repository (or the old clone, its local branches gone), configured as `git clone` leaves it."""
    if attempt.reused:
        _drop_local_branches(git)
    else:
        git.run("init", "--quiet", f"--object-format={_object_format(remote)}")
    git.run("config", "remote.origin.url", opts.remote_url)
    git.run("config", "remote.origin.fetch", origin_fetch.BRANCHES)
    if not opts.fetch_tags:
        git.run("config", "remote.origin.tagOpt", "--no-tags")
    elif attempt.reused:
        git.ok("config", "--unset", "remote.origin.tagOpt")
    if attempt.cache and lend_cache and not attempt.reused:
        attempt.cache.lend_to(git.git_path("."))
        attempt.cache_lent = attempt.foreign = True


def _drop_local_branches(git: Git) -> None:
    """actions/checkout's cleanup of a reused clone: HEAD detached, local branches and mirrorci refs gone."""
    head = git.run("rev-parse", "--verify", "--quiet", "HEAD", check=False).stdout.decode().strip()
    if head:
        git.run("update-ref", "--no-deref", "HEAD", head)
    stale = git.out("for-each-ref", "--format=%(refname)", "refs/heads/", "refs/mirrorci/").split()
    git.update_refs({}, stale)


def _wanted(opts: CheckoutOptions, remote: RemoteRefs) -> dict[str, str]:
    """The branch and tag tips the clone ends with (tags only when wanted, or the one checked out)."""
    ref_tag = _ref_tag(opts, remote)
    return {ref: oid for ref, oid in remote.tips().items()
            if opts.fetch_tags or not ref.startswith("refs/tags/") or ref == ref_tag}


def _ref_tag(opts: CheckoutOptions, remote: RemoteRefs) -> str | None:
    full = refnames.resolve_ref(opts.ref, remote) if opts.ref else None
    return full if full and full.startswith("refs/tags/") else None


def _fill(
    opts: CheckoutOptions, prefer: list[str], target: Path, result: CheckoutResult, remote: RemoteRefs,
    origin_env: dict[str, str], attempt: _Attempt, lend_cache: bool = True,
) -> None:
    """One pass: objects from the workspace, the cache or a mirror (if allowed), the rest from origin,
    then verify and check out."""
    git = Git(target)
    _prepare(git, opts, remote, attempt, lend_cache)
    origin = git.with_env(origin_env)
    wanted = _wanted(opts, remote)
    commit = opts.commit or refnames.wanted_commit(opts.ref, remote)
    needed = set(wanted.values()) | ({commit} if commit else set())
    with log.step("mirror", result.timings):
        fetched = _gather(git, target, opts, prefer, remote, result, attempt, needed, origin)
    try:
        with log.step("final_fetch", result.timings):
            if fetched:
                _write_haves(git, fetched.tips.values())
            _complete_from_origin(git, origin, opts, remote, result, attempt, wanted, commit, fetched)
    finally:
        git.delete_refs(HAVE_PREFIX)
    with log.step("checkout", result.timings, "Checking out"):
        _check_out(git, origin, opts, remote, result, attempt, wanted, commit)


def _gather(
    git: Git, target: Path, opts: CheckoutOptions, prefer: list[str], remote: RemoteRefs, result: CheckoutResult,
    attempt: _Attempt, needed: set[str], origin: Git,
) -> Fetched | None:
    """Objects from what is already here, else from the first mirror method that works."""
    local = attempt.local_objects
    if local and not _missing(git, needed):
        result.method = local
        result.cache = f"every tip origin advertised is in the {local}"
        if opts.lfs and attempt.use_mirrors:
            attempt.mirrors = _load_mirrors(origin, opts, remote, result)
        return None
    if not attempt.use_mirrors:
        return None
    mirrors = attempt.mirrors = _load_mirrors(origin, opts, remote, result)
    chain = mirrors.bundle_list.chain() if mirrors.bundle_list else []
    if local and chain and mirrors.bundle_list and not mirrors.bundle_list.plan(attempt.have_bundle):
        result.method = local
        result.cache = f"the newest bundle is already in the {local}; only newer objects come from origin"
        return None
    if mirrors.empty:
        result.fallbacks.append({"method": "all", "reason": "origin advertises no usable mirror under refs/mirrors/"})
        return None
    fetched = _try_sources(git, target, opts, prefer, mirrors, result, attempt)
    if not fetched:
        return None
    attempt.foreign = True
    # A base installed with its published index while the cache was not lent: the
    # clone is self-contained, and its packs replace the cache's (see cache.py).
    attempt.fast_pack = "fast" in fetched.apply_path and not attempt.cache_lent and not attempt.reused
    shas = [b.sha256 for b in chain]
    if fetched.sha256 and fetched.sha256 in shas:
        # The clone (and the cache) hold the chain up to the last bundle applied.
        attempt.covered = shas[:shas.index(fetched.sha256) + 1]
    result.method, result.mirror_uri = fetched.method, fetched.uri
    result.apply_path, result.bytes_from_mirror = fetched.apply_path or None, fetched.bytes
    return fetched


def _complete_from_origin(
    git: Git, origin: Git, opts: CheckoutOptions, remote: RemoteRefs, result: CheckoutResult, attempt: _Attempt,
    wanted: dict[str, str], commit: str | None, fetched: Fetched | None,
) -> None:
    """Fetch what the clone still lacks from origin, or write origin's refs when nothing is missing."""
    shape = origin_fetch.FetchShape(depth=0 if attempt.foreign else opts.fetch_depth, filter=opts.filter,
                                    tags=opts.fetch_tags)
    missing = _missing(git, set(wanted.values()) | ({commit} if commit else set()))
    if not missing:
        result.final_fetch = False
        holder = "mirror" if fetched else result.method
        result.final_fetch_reason = f"the {holder} holds every branch and tag origin advertised"
        log.info(f"{result.final_fetch_reason}: no fetch from origin")
        _sync_refs(git, {refnames.tracking_name(ref): oid for ref, oid in wanted.items()})
        return
    result.final_fetch_reason = (
        f"origin has {len(missing)} tip(s) the mirror lacks" if fetched
        else f"origin has {len(missing)} tip(s) the {result.method} lacks" if attempt.local_objects
        else "no mirror was used"
    )
    with log.group("Fetching the rest from origin" if attempt.foreign else "Fetching from origin"):
        before = git.pack_bytes()
        fetcher = Git(target_of(git), config=("fetch.unpackLimit=1",), env=origin.env)
        if shape.depth:
            log.info(f"fetch-depth {shape.depth}: fetching only what the checkout needs from origin")
            specs = [origin_fetch.shallow_refspec(opts.ref, commit, remote)]
            origin_fetch.fetch(fetcher, opts.remote_url, specs, shape)
        else:
            specs = origin_fetch.full_refspecs(opts.fetch_tags, _ref_tag(opts, remote))
            origin_fetch.fetch(fetcher, opts.remote_url, specs, shape)
            if commit and _missing(git, {commit}):
                source = refnames.extra_ref(opts.ref, remote) or commit
                origin_fetch.fetch_object(fetcher, opts.remote_url, source, shape)
        result.bytes_from_origin = git.pack_bytes() - before
        log.info(f"{result.bytes_from_origin} bytes from origin")


def target_of(git: Git) -> Path:
    assert git.cwd is not None
    return git.cwd


def _check_out(
    git: Git, origin: Git, opts: CheckoutOptions, remote: RemoteRefs, result: CheckoutResult, attempt: _Attempt,
    wanted: dict[str, str], commit: str | None,
) -> None:
    """HEAD, sparse patterns, the work tree, and (beside it) verification of whatever origin did not send."""
    result.ref, result.detached = worktree.set_head(git, opts.ref, opts.commit, remote)
    head = git.out("rev-parse", "HEAD")
    if attempt.foreign and commit and not refnames.extra_ref(opts.ref, remote):
        worktree.check_origin_serves(git, origin, opts.remote_url, head, opts.ref or head)
    # A partial clone reads missing objects from origin (they need no verification, but must be readable).
    reader = origin if opts.filter else git
    verifier = _start_verification(reader, opts, attempt, wanted, head) if attempt.foreign else None
    worktree.set_sparse(git, opts.sparse_checkout, opts.sparse_cone)
    worktree.write(target_of(git), origin.env if opts.filter else {}, attempt.reused)
    result.head = head
    if verifier:
        result.verified = verifier.result()
        log.info(f"verified {result.verified['objects']} objects ({result.verified['scope']}) "
                 f"in {result.verified['seconds']:.2f} s")


def _start_verification(
    git: Git, opts: CheckoutOptions, attempt: _Attempt, wanted: dict[str, str], head: str
) -> worktree.Verifier:
    # --verify full: git's indexing already hashed every pack the clone holds, unless the
    # runner cache lent its objects or the clone was already there (some may have come with
    # a publisher's index).
    local = attempt.cache_lent or attempt.reused
    scope = ("all" if local else "connected") if opts.verify == "full" else "relied-on"
    # A sparse checkout relies only on the paths it writes (cone mode says which exactly).
    paths = worktree.cone_pathspecs(opts.sparse_checkout) if opts.sparse_checkout and opts.sparse_cone else None
    return worktree.Verifier(git, sorted(set(wanted.values()) | {head}), head, scope, paths or None)


def _write_haves(git: Git, oids: Iterable[str]) -> None:
    """The mirror's tips as negotiation hints for the final fetch, under neutral names.

    A bundle's ref names are the mirror's word, not origin's: they are never written
    as refs. Only tips that exist here as commits or tags are kept.
    """
    wanted = sorted({oid for oid in oids if refnames.OID.fullmatch(oid)})
    if not wanted:
        return
    types = git.out("cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(wanted) + "\n")
    present = [line.split()[0] for line in types.splitlines() if line.endswith((" commit", " tag"))]
    git.update_refs({f"{HAVE_PREFIX}{i}": oid for i, oid in enumerate(present)})


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
        allow_file_urls=opts.allow_file_urls, settings=opts.settings,
        deadline=Deadline(opts.timeout, opts.stall_timeout), max_bundle_size=opts.max_bundle_size,
        before_fast_path=release_cache,
    )
    ctx.have_bundle = attempt.have_bundle
    for name in prefer:
        with log.group(f"Trying the {name} mirror"):
            try:
                ctx.deadline = ctx.deadline.restart()
                fetched = METHODS[name].fetch(ctx)
                log.info(f"{name}: {fetched.bytes} bytes from {log.redact_url(fetched.uri)}")
                return fetched
            except SourceFailed as exc:
                reason = str(exc)
            except Exception as exc:  # one funnel: whatever a mirror does wrong is a fallback
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                _clean_up(name, ctx)
            result.fallbacks.append({"method": name, "reason": log.redact(reason)})
            log.warn(f"{name} mirror not used: {log.redact(reason)}")
    log.warn("no mirror could be used; fetching everything from origin")
    return None


def _clean_up(name: str, ctx: FetchContext) -> None:
    """The method's own cleanup after its attempt (sources/base.py); trouble there is only a warning."""
    try:
        METHODS[name].cleanup(ctx)
    except (GitError, OSError) as exc:
        log.warn(f"{name}: could not clean up after the attempt: {exc}")


def _missing(git: Git, oids: set[str]) -> set[str]:
    if not oids:
        return set()
    out = git.out("cat-file", "--batch-check=%(objectname)", input="\n".join(sorted(oids)) + "\n")
    return {line.split()[0] for line in out.splitlines() if line.endswith(" missing")}


def _sync_refs(git: Git, refs: dict[str, str]) -> None:
    """Exactly origin's branches (as remote-tracking refs) and tags: stale ones of a reused clone go."""
    present = git.out("for-each-ref", "--format=%(refname)", "refs/remotes/origin/", "refs/tags/").split()
    stale = [r for r in present if r not in refs and r != "refs/remotes/origin/HEAD"]
    git.update_refs(refs, stale)
