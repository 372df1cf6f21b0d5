"""What a publish deletes from the store once the refs have moved.

Kept: every bundle, index and torrent that the new list or the previous one
references (a client that read the previous list a moment ago is still downloading
from it), and anything younger than the grace period (a client that read an even
older list, and an upload in progress). Everything else under the publishing
name's own prefix goes; keys outside `<name>/bundles/` are never listed, let alone
deleted, so several mirrors can share one store. A failed listing or deletion is a
warning: the mirror is published either way, and the next publish tries again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from . import log
from .chain import artifact_keys, bundles_prefix
from .mirrorlist import BundleList
from .store import Store

DEFAULT_GRACE = 86400.0


def referenced_keys(name: str, lists: Iterable[BundleList | None]) -> set[str]:
    """Every artifact key the lists' bundles own (by content address, whatever their URIs say)."""
    keys: set[str] = set()
    for listed in lists:
        for entry in listed.bundles if listed else []:
            keys.update(artifact_keys(name, entry.sha256))
    return keys


def prune(store: Store, name: str, keep: set[str], grace: float, now: float | None = None) -> dict[str, Any]:
    """Delete what `keep` does not name under the mirror's prefix, if older than `grace` seconds."""
    now = time.time() if now is None else now
    prefix = bundles_prefix(name)
    result: dict[str, Any] = {"grace": grace, "deleted": [], "kept_referenced": 0, "kept_young": 0, "failed": {}}
    try:
        stored = store.list(prefix)
    except Exception as exc:  # a store that may not be listed: no retention, still a publish
        log.warn(f"cannot list {prefix} in the store, nothing was deleted: {exc}")
        result["failed"] = {prefix: str(exc)}
        return result
    doomed = []
    for obj in stored:
        if not obj.key.startswith(prefix):  # the store's own contract; checked again because deleting is final
            continue
        if obj.key in keep:
            result["kept_referenced"] += 1
        elif now - obj.modified < grace:
            result["kept_young"] += 1
        else:
            doomed.append(obj.key)
    if not doomed:
        return result
    try:
        failed = store.delete(doomed)
    except Exception as exc:
        failed = {key: str(exc) for key in doomed}
    result["deleted"] = [key for key in doomed if key not in failed]
    result["failed"] = failed
    if result["deleted"]:
        log.info(f"removed {len(result['deleted'])} file(s) no list references from {prefix} (older than {grace:g} s)")
    if failed:
        first = next(iter(failed.items()))
        log.warn(f"could not delete {len(failed)} unreferenced file(s) from the store (e.g. {first[0]}: {first[1]}); "
                 "the next publish tries again")
    return result
