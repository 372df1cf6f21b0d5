"""Which of origin's refs a `--ref` names, and where each lands in the clone.

`--ref` may be a branch or tag name, a full ref name origin advertises outside
branches and tags (refs/pull/7/merge), or an object id; these rules are git
clone's and actions/checkout's, decided from origin's advertisement alone.
"""

from __future__ import annotations

import re

from .remote import RemoteRefs

OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def tracking_name(ref: str) -> str:
    if ref.startswith("refs/heads/"):
        return "refs/remotes/origin/" + ref[len("refs/heads/"):]
    return ref


def extra_ref(ref: str | None, remote: RemoteRefs) -> str | None:
    """A full refname origin advertises outside branches and tags (refs/pull/1/merge, ...)."""
    if ref and ref.startswith("refs/") and ref in remote.refs and not resolve_ref(ref, remote):
        return ref
    return None


def wanted_commit(ref: str | None, remote: RemoteRefs) -> str | None:
    """The object a --ref needs that is no branch or tag tip: another ref's target, or an object id."""
    if not ref or resolve_ref(ref, remote):
        return None
    extra = extra_ref(ref, remote)
    if extra:
        return remote.refs[extra]
    if OID.fullmatch(ref):
        return ref
    return None


def resolve_ref(ref: str, remote: RemoteRefs) -> str | None:
    for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if candidate in remote.tips():
            return candidate
    return None
