"""The interface every mirror method implements, and what it hands back.

A method gets the parsed mirror set and the repository being filled, and either
leaves objects plus ref tips in it (returned as `Fetched`) or raises SourceFailed
with a reason, after cleaning up after itself; the checkout then tries the next.
Whatever the outcome, the checkout then calls its `cleanup`.

A method's options, secrets and settings are its `backend`'s (backend.py); it reads
its settings from `FetchContext.settings` with `backend.setting`. registry.py lists
the methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .. import log
from ..apply import Applied, Downloaded, apply_streaming, check_room, download_pair, install_downloaded
from ..backend import Backend, Settings
from ..deadline import Deadline
from ..errors import SourceFailed
from ..gitcmd import Git
from ..mirrorlist import BundleEntry, MirrorSet
from ..progress import Progress

PARALLEL_DOWNLOADS = 4  # a chain's bundles download at once, over this many connections


@dataclass
class FetchContext:
    git: Git
    repo_dir: Path
    mirrors: MirrorSet
    verify: str = "auto"  # "auto": fast path when an index is published; "full": always index-pack
    allow_file_urls: bool = False
    settings: Settings = field(default_factory=dict)  # per back-end, by name: see backend.py
    deadline: Deadline = field(default_factory=Deadline)  # this method's attempt; see deadline.py
    max_bundle_size: int = 64 << 30  # a list entry claiming more is refused before any download
    have_bundle: Callable[[str], bool] = lambda sha256: False  # the runner's cache, if any
    # Called before a pack is installed with the publisher's index (the fast path): such a
    # pack must be alone in the object store (the checkout stops lending the cache).
    before_fast_path: Callable[[], None] = lambda: None


@dataclass
class Fetched:
    method: str
    uri: str
    tips: dict[str, str]  # refname -> oid now present in the repository
    bytes: int
    apply_path: str = ""
    sha256: str | None = None  # of the (last) bundle applied, if the method used one
    bundles: list[str] = field(default_factory=list)  # sha256 of every bundle applied, in order


DEFAULTS = ("always", "configured", "named")


class Source:
    """A mirror method. Subclasses set `name` and implement `fetch`; the rest has defaults."""

    name: str = ""
    backend: Backend | None = None  # the options, secrets and settings it declares (None: it has none)
    # Its place in --prefer's default order: "always" in it; "configured": first, once `configured`
    # says the user set it up; "named": only when --prefer names it.
    default: str = "always"

    def configured(self, settings: Settings) -> bool:
        """Whether the user set this method up with its own options (see `default`)."""
        return False

    def fetch(self, ctx: FetchContext) -> Fetched:
        """Fill the repository from this kind of mirror, or raise SourceFailed."""
        raise NotImplementedError

    def cleanup(self, ctx: FetchContext) -> None:
        """Called after every attempt of this method, whether it worked or not: remove whatever it
        left in the repository besides objects (refs, temporary files). Nothing, by default."""


def plans_for(ctx: FetchContext, schemes: tuple[str, ...]) -> list[list[BundleEntry]]:
    """What to try, in order: the chain's elements the cache lacks, then the whole chain.

    A plan is a list of bundles applied in order (a chain's base, then its increments);
    every bundle of a plan must be reachable with one of `schemes`.
    """
    listed = ctx.mirrors.bundle_list
    if not listed:
        return []
    chain = listed.chain()
    plans = []
    behind = listed.plan(ctx.have_bundle)
    if behind and behind != chain:
        plans.append(behind)
    if chain:
        plans.append(chain)
    return [p for p in plans if all(b.uri.split(":", 1)[0].lower() in schemes for b in p)]


def apply_plan(
    ctx: FetchContext, method: str, plan: list[BundleEntry], opener: Callable[[str], BinaryIO]
) -> Fetched:
    """Download and apply a plan's bundles in order; the result names the last one.

    The list's sizes are checked against --max-bundle-size and the free disk first,
    and the whole of it runs under this attempt's deadline. With published indexes
    (and --verify auto) every pack is downloaded at once, in parallel, then installed
    in chain order without index-pack; otherwise each streams into index-pack in turn.
    """
    pack_dir = ctx.git.git_path("objects/pack")
    check_room(pack_dir, _total(plan), ctx.max_bundle_size)
    progress = Progress(f"{method} {_describe(plan)}", sum(b.size for b in plan))
    fast = all(b.has_index for b in plan) and ctx.verify != "full"
    applied: list[Applied] = []
    try:
        if fast:
            if not plan[0].incremental:
                ctx.before_fast_path()  # a base holds everything: it needs nothing borrowed
            alone = store_is_empty(ctx.git)
            for got in _download_all(ctx, pack_dir, plan, opener, progress):
                applied.append(install_downloaded(ctx.git, got, alone and not applied, ctx.deadline))
        else:
            for entry in plan:
                applied.append(apply_streaming(ctx.git, entry, opener, progress, deadline=ctx.deadline))
    finally:
        progress.close()
    last = applied[-1]
    tips = {ref: oid for oid, ref in last.header.refs if ref.startswith(("refs/heads/", "refs/tags/"))}
    paths = sorted({a.path for a in applied})
    return Fetched(method, plan[-1].uri, tips, sum(a.bytes for a in applied), "+".join(paths), plan[-1].sha256,
                   bundles=[b.sha256 for b in plan])


def _download_all(
    ctx: FetchContext, pack_dir: Path, plan: list[BundleEntry], opener: Callable[[str], BinaryIO], progress: Progress,
) -> list[Downloaded]:
    """Every bundle of the plan at once (a few connections), each checked against the list as it lands."""
    if len(plan) == 1:
        return [download_pair(pack_dir, plan[0], opener, progress, ctx.deadline)]
    lock = threading.Lock()

    def count(n: int) -> None:
        with lock:
            progress(n)

    done: list[Downloaded] = []
    with ThreadPoolExecutor(max_workers=min(PARALLEL_DOWNLOADS, len(plan))) as pool:
        futures = [pool.submit(download_pair, pack_dir, entry, opener, count, ctx.deadline) for entry in plan]
        try:
            for future in futures:
                done.append(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:
                try:
                    got = future.result()
                except BaseException:
                    continue
                got.discard()
            raise
    return done


def _total(plan: list[BundleEntry]) -> BundleEntry:
    """One entry standing for the plan's total size, for the disk and size checks."""
    first = plan[0]
    return BundleEntry(id=first.id, uri=first.uri, creation_token=0, sha256=first.sha256,
                       size=sum(b.size for b in plan), idx_size=sum(b.idx_size for b in plan))


def _describe(plan: list[BundleEntry]) -> str:
    if len(plan) == 1:
        return f"bundle {plan[0].id}"
    return f"{len(plan)} bundles ({plan[0].id} .. {plan[-1].id})"


def apply_entry(ctx: FetchContext, method: str, entry: BundleEntry, opener: Callable[[str], BinaryIO]) -> Fetched:
    """One bundle, as a plan of one (the torrent method downloads its files itself)."""
    return apply_plan(ctx, method, [entry], opener)


def first_working(
    ctx: FetchContext, method: str, plans: list[list[BundleEntry]], opener: Callable[[str], BinaryIO]
) -> Fetched:
    if not plans:
        raise SourceFailed("no bundle in the mirror list for this method")
    reasons = []
    for plan in plans:
        try:
            return apply_plan(ctx, method, plan, opener)
        except SourceFailed as exc:
            reasons.append(str(exc))
        except OSError as exc:
            reasons.append(f"download failed: {exc}")
        except Exception as exc:  # any library's own error type: still a fallback, with a reason
            reasons.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'failed'}")
        log.warn(f"{method}: {_describe(plan)} not used: {reasons[-1]}")
        if ctx.deadline.expired():
            break  # the attempt's time is spent: the next plan would not get any
    raise SourceFailed("; ".join(reasons))


def store_is_empty(git: Git) -> bool:
    """No pack, no loose object, no alternates: a pack indexed by someone else may only go there.

    An id present twice could then answer with two contents, and which one git reads
    depends on its pack order: verification and checkout could see different bytes.
    """
    objects = git.git_path("objects")
    if (objects / "info" / "alternates").exists() or any((objects / "pack").glob("pack-*.idx")):
        return False
    return not any(p.is_dir() and len(p.name) == 2 and any(p.iterdir()) for p in objects.iterdir())
