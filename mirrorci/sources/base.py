"""The interface every mirror method implements, and what it hands back.

A method gets the parsed mirror set and the repository being filled, and either
leaves objects plus ref tips in it (returned as `Fetched`) or raises SourceFailed
with a reason, after cleaning up after itself; the checkout then tries the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Protocol

from .. import log
from ..apply import Applied, apply_fast, apply_streaming, check_room
from ..deadline import Deadline
from ..errors import SourceFailed
from ..gitcmd import Git
from ..mirrorlist import BundleEntry, MirrorSet
from ..progress import Progress
from ..s3config import S3Options


@dataclass
class FetchContext:
    git: Git
    repo_dir: Path
    mirrors: MirrorSet
    verify: str = "auto"  # "auto": fast path when an index is published; "full": always index-pack
    allow_file_urls: bool = False
    s3: S3Options = field(default_factory=S3Options)
    timeout: float = 60.0
    deadline: Deadline = field(default_factory=Deadline)  # this method's attempt; see deadline.py
    max_bundle_size: int = 64 << 30  # a list entry claiming more is refused before any download
    have_bundle: Callable[[str], bool] = lambda sha256: False  # the runner's cache, if any
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    torrent: Any = None  # torrent.TorrentOptions for the torrent method
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
    bundle_id: str = ""
    sha256: str | None = None  # of the bundle applied, if the method used one


class Source(Protocol):
    name: str

    def fetch(self, ctx: FetchContext) -> Fetched:
        """Fill the repository from this kind of mirror, or raise SourceFailed."""


def bundles_for(ctx: FetchContext, schemes: tuple[str, ...]) -> list[BundleEntry]:
    """What to try, in order: an incremental bundle on top of one the cache holds, then the newest full one."""
    listed = ctx.mirrors.bundle_list
    if not listed:
        return []
    picks = [listed.incremental_from(ctx.have_bundle), listed.newest()]
    return [b for b in picks if b and b.uri.split(":", 1)[0].lower() in schemes]


def apply_entry(
    ctx: FetchContext, method: str, entry: BundleEntry, opener: Callable[[str], BinaryIO]
) -> Fetched:
    """Download one bundle through `opener` and apply it on the fast or streaming path.

    The list's sizes are checked against --max-bundle-size and the free disk first,
    and the whole of it runs under this attempt's deadline.
    """
    check_room(ctx.git.git_path("objects/pack"), entry, ctx.max_bundle_size)
    progress = Progress(f"{method} bundle {entry.id}", entry.size)
    use_fast = entry.has_index and ctx.verify != "full" and not entry.incremental
    if use_fast:
        ctx.before_fast_path()
        use_fast = store_is_empty(ctx.git)
    apply = apply_fast if use_fast else apply_streaming
    applied: Applied = apply(ctx.git, entry, opener, progress, deadline=ctx.deadline)
    progress.close()
    tips = {ref: oid for oid, ref in applied.header.refs if ref.startswith(("refs/heads/", "refs/tags/"))}
    return Fetched(method, entry.uri, tips, applied.bytes, applied.path, entry.id, entry.sha256)


def first_working(ctx: FetchContext, method: str, entries: list[BundleEntry], opener: Callable[[str], BinaryIO]) -> Fetched:
    if not entries:
        raise SourceFailed("no bundle in the mirror list for this method")
    reasons = []
    for entry in entries:
        try:
            return apply_entry(ctx, method, entry, opener)
        except SourceFailed as exc:
            reasons.append(str(exc))
        except OSError as exc:
            reasons.append(f"download failed: {exc}")
        except Exception as exc:  # any library's own error type: still a fallback, with a reason
            reasons.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'failed'}")
        log.warn(f"{method}: bundle {entry.id} not used: {reasons[-1]}")
        if ctx.deadline.expired():
            break  # the attempt's time is spent: the next bundle would not get any
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
