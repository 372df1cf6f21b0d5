"""Git LFS objects through the mirror: published next to the bundles, verified against their oids.

Publishing uploads the LFS objects the published tips reference, content-addressed
by oid (a sha256 already), with a manifest a ref under refs/mirrors/ points to.
A checkout with `lfs` takes each needed object from the mirror, checks it against its
oid, places it where git-lfs reads it, and lets git-lfs fill the work tree; what the
mirror lacks comes from origin's LFS server as usual.

Modules: manifest (the ref's blob and the manifest, parsed without trust), pointer
(pointer blobs, the LFS storage), upload (publish side), download and worktree
(checkout side), tool (is git-lfs installed). This package's own import stays light:
mirrorlist.py imports `lfs.manifest`, so nothing here may import mirrorlist at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..deadline import DEFAULT_STALL, DEFAULT_TIMEOUT
from ..gitcmd import Git
from ..s3config import S3Options
from .tool import git_lfs_version, require_git_lfs

if TYPE_CHECKING:
    from ..mirrorlist import MirrorSet

__all__ = ["LfsSettings", "fill_worktree", "git_lfs_version", "require_git_lfs"]


@dataclass
class LfsSettings:
    allow_file_urls: bool = False
    timeout: float = DEFAULT_TIMEOUT  # the whole attempt at the mirror's LFS objects (--timeout)
    stall_timeout: float = DEFAULT_STALL
    show_progress: bool = True
    s3: S3Options = field(default_factory=S3Options)  # for s3:// manifest and object URLs


def fill_worktree(git: Git, origin_env: dict[str, str], mirrors: MirrorSet | None,
                  settings: LfsSettings) -> dict[str, Any]:
    """Fill the checked-out work tree's LFS files; returns a summary for the checkout's JSON.

    The work tree must have been written with LFS smudging off (pointer files). Raises
    UsageError when git-lfs is not installed, MirrorciError when origin's LFS server
    cannot provide what the mirror did not.
    """
    from .worktree import fill

    return fill(git, origin_env, mirrors, settings)
