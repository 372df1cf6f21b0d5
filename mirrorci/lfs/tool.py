"""The git-lfs command: whether it is there, and the one error line when it is needed and is not."""

from __future__ import annotations

from ..errors import UsageError
from ..gitcmd import Git

INSTALL_HINT = "install git-lfs (Debian/Ubuntu: apt-get install git-lfs; https://git-lfs.com)"


def git_lfs_version(git: Git) -> str | None:
    """`git-lfs/3.3.0 (...)`, or None when `git lfs` does not run."""
    try:
        proc = git.run("lfs", "version", check=False)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace").strip() or None


def require_git_lfs(git: Git) -> str:
    """Fail before any work with a usage error (exit code 2) when git-lfs is missing."""
    version = git_lfs_version(git)
    if not version:
        raise UsageError(f"--lfs needs git-lfs, which is not installed here: {INSTALL_HINT}, or drop --lfs")
    return version
