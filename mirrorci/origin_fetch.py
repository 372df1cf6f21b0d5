"""The fetch from origin that completes a checkout: what is asked for, and how.

After a mirror, origin is asked only for what the mirror lacked (the mirror's tips
are negotiation hints). Without any mirror or cache objects, the fetch is what the
user asked actions/checkout for: `fetch-depth` (a shallow fetch of the one ref to
check out, so a mirror that is down does not make origin serve a full clone),
`filter` (a partial clone), and no tags unless wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import log, refnames
from .gitcmd import Git
from .remote import RemoteRefs, with_retries

BRANCHES = "+refs/heads/*:refs/remotes/origin/*"
TAGS = "+refs/tags/*:refs/tags/*"


@dataclass(frozen=True)
class FetchShape:
    """How much of origin a fetch takes: what the checkout's options ask for."""

    depth: int = 0  # 0: the whole history
    filter: str | None = None  # a partial-clone filter spec, e.g. blob:none
    tags: bool = True


def full_refspecs(tags: bool, ref_tag: str | None) -> list[str]:
    """Every branch, and every tag (or only the tag being checked out)."""
    specs = [BRANCHES]
    if tags:
        specs.append(TAGS)
    elif ref_tag:
        specs.append(f"+{ref_tag}:{ref_tag}")
    return specs


def shallow_refspec(ref: str | None, commit: str | None, remote: RemoteRefs) -> str:
    """The one ref a shallow checkout needs, as actions/checkout fetches it (refs/pull/N/merge included)."""
    full = refnames.resolve_ref(ref, remote) if ref else (
        remote.head_target if remote.head_target in remote.tips() else None
    )
    if full:
        dest = refnames.tracking_name(full)
        return f"+{commit}:{dest}" if commit else f"+{full}:{dest}"
    extra = refnames.extra_ref(ref, remote)
    if extra:
        dest = "refs/remotes/" + extra[len("refs/"):]
        return f"+{commit}:{dest}" if commit else f"+{extra}:{dest}"
    return commit or refnames.wanted_commit(ref, remote) or ref or "HEAD"


def fetch(origin: Git, url: str, specs: list[str], shape: FetchShape, prune: bool = True) -> None:
    """`git fetch origin <specs>` with retries, shaped by the checkout's options."""
    args = ["fetch", "--quiet", "--no-tags"]
    if prune and not shape.depth:
        args.append("--prune")
    if shape.depth:
        args.append(f"--depth={shape.depth}")
    if shape.filter:
        args.append(f"--filter={shape.filter}")
    where = log.redact_url(url)
    with_retries(lambda: origin.run(*args, "origin", *specs), f"fetching from {where}")


def fetch_object(origin: Git, url: str, source: str, shape: FetchShape) -> None:
    """One commit (or a ref outside branches and tags) by name, without touching any ref."""
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    if shape.filter:
        args.append(f"--filter={shape.filter}")
    where = log.redact_url(url)
    with_retries(lambda: origin.run(*args, "origin", source), f"fetching {source} from {where}")
