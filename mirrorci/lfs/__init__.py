"""Git LFS objects through the mirror: published next to the bundles, verified against their oids.

Publishing uploads the LFS objects the published tips reference, content-addressed
by oid (a sha256 already), with a manifest a ref under refs/mirrors/ points to.
A checkout with `lfs` takes each needed object from the mirror, checks it against its
oid, places it where git-lfs reads it, and lets git-lfs fill the work tree; what the
mirror lacks comes from origin's LFS server as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..gitcmd import Git
from ..mirrorlist import MirrorSet


@dataclass
class LfsSettings:
    allow_file_urls: bool = False
    timeout: float = 900.0
    stall_timeout: float = 30.0
    show_progress: bool = True


def fill_worktree(git: Git, origin_env: dict[str, str], mirrors: MirrorSet | None, settings: LfsSettings) -> dict[str, Any]:
    """Fill the checked-out work tree's LFS files; returns a summary for the checkout's JSON."""
    raise NotImplementedError
