"""Who may use a clone after the checkout: git's safe.directory and the files' owner.

Later steps of a CI job may run git as another user than the checkout did (a
container step as root, the runner's user on the host). Git refuses to work in a
repository another user owns unless `safe.directory` names it, and the runner's
user cannot change files root created. actions/checkout adds the path to
safe.directory in the global git config (`set-safe-directory`); a container that
writes into a runner's workspace gives the files to the workspace's owner.
"""

from __future__ import annotations

import os
from pathlib import Path

from .gitcmd import Git


def trust(path: Path, git: Git | None = None) -> bool:
    """Add `path` to safe.directory in the global git config, unless it is there; True if it was added."""
    git = git or Git()
    listed = git.run("config", "--global", "--get-all", "safe.directory", check=False)  # exit 1: none yet
    if str(path) in listed.stdout.decode("utf-8", "surrogateescape").splitlines():
        return False
    git.run("config", "--global", "--add", "safe.directory", str(path))
    return True


def give_to_owner_of(directory: Path, path: Path) -> int:
    """When running as root, give `path`'s tree (inside `directory`) to `directory`'s owner; the count changed.

    Nothing to do for an ordinary user (it owns what it wrote), a root-owned `directory`,
    or a `path` outside it; symbolic links are changed themselves, never followed.
    """
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None or geteuid() != 0:
        return 0
    try:
        owner = directory.stat()
    except OSError:
        return 0
    path, directory = path.absolute(), directory.absolute()
    if owner.st_uid == 0 or not (path == directory or directory in path.parents):
        return 0
    os.lchown(path, owner.st_uid, owner.st_gid)
    changed = 1
    for root, dirs, files in os.walk(path):  # each entry once: as a child of the directory that holds it
        for name in dirs + files:
            os.lchown(os.path.join(root, name), owner.st_uid, owner.st_gid)
            changed += 1
    return changed
