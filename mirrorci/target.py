"""The --path directory a checkout fills, and how to put it back if the checkout does not finish.

Three starting points, as actions/checkout has them:
- missing or empty: a new clone (a directory this checkout created is removed on failure);
- a clone of the same origin, with --clean: updated in place (new objects, refs moved,
  `read-tree -u --reset` writes only the files that changed, `clean -ffdx`), which is
  what keeps self-hosted runners' workspaces fast;
- anything else, with --clean: its contents are moved aside (same file system, so a
  rename) and only deleted once the checkout succeeded; put back if it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import log
from .errors import UsageError
from .gitcmd import Git

# Where a checkout records which of the mirror's bundles a clone holds, so the next
# checkout into the same workspace downloads only the increments after them.
BUNDLES_RECORD = "mirrorci/bundles"


def empty_dir(path: Path) -> None:
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def same_url(a: str, b: str) -> bool:
    """Two spellings of one origin URL: a trailing slash or `.git` does not make another repository."""

    def norm(url: str) -> str:
        url = url.strip().rstrip("/")
        return url[:-4] if url.endswith(".git") else url

    return norm(a) == norm(b)


def reusable_clone(path: Path, url: str) -> str | None:
    """None if `path` holds a clone of `url` that can be updated in place, else why not."""
    if not (path / ".git").is_dir():
        return "it is not a git clone"
    git = Git(path)
    if not git.ok("rev-parse", "--git-dir"):
        return "its .git is not a usable repository"
    if git.ok("config", "--get", "extensions.partialclone") or git.ok("config", "--get", "remote.origin.promisor"):
        return "it is a partial clone"
    if (path / ".git" / "shallow").exists():
        return "it is a shallow clone"
    current = git.run("config", "--get", "remote.origin.url", check=False).stdout.decode(errors="replace").strip()
    if not current:
        return "it has no origin remote"
    if not same_url(current, url):
        return f"its origin is {log.redact_url(current)}"
    return None


class Target:
    """The directory being filled, how it started (`state`), and how to undo."""

    def __init__(self, path: Path, clean: bool, url: str) -> None:
        self.path = path
        self.created = False
        self.reused = False
        self.aside: Path | None = None
        self.state = "new"
        if not path.exists():
            path.mkdir(parents=True)
            self.created = True
            return
        if not path.is_dir():
            raise UsageError(f"--path {path}: exists and is not a directory; choose another path")
        if not any(path.iterdir()):
            return
        if not clean:
            raise UsageError(
                f"--path {path}: exists and is not an empty directory; choose another path, empty it, or pass --clean"
            )
        why_not = reusable_clone(path, url)
        if why_not is None:
            self.reused = True
            self.state = "reused"
            _unlock(path)
            return
        log.info(f"--path {path}: not updated in place ({why_not}); replacing its contents")
        self.state = f"replaced ({why_not})"
        self.aside = self._move_aside(path)

    @staticmethod
    def _move_aside(path: Path) -> Path | None:
        """Move the contents next to the directory; where that is impossible (a mount point such as
        a container's workspace, a read-only parent), delete them in place as actions/checkout does."""
        try:
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.mirrorci-old-", dir=path.parent))
        except OSError:
            empty_dir(path)
            return None
        try:
            for child in list(path.iterdir()):
                os.replace(child, aside / child.name)
        except OSError as exc:
            log.info(f"--clean: cannot keep the old contents aside ({exc.strerror}); deleting them")
            for child in list(aside.iterdir()):
                try:
                    os.replace(child, path / child.name)
                except OSError:
                    pass
            shutil.rmtree(aside, ignore_errors=True)
            empty_dir(path)
            return None
        return aside

    def restore(self) -> None:
        """Undo after a failure. A clone updated in place is left as it is: it is still a clone
        of the same origin (new objects and moved refs do not break it), and the next run reuses it."""
        if self.reused:
            return
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        empty_dir(self.path)
        if self.aside:
            for child in self.aside.iterdir():
                os.replace(child, self.path / child.name)
            self.aside.rmdir()

    def commit(self) -> None:
        if self.aside:
            shutil.rmtree(self.aside, ignore_errors=True)


def _unlock(path: Path) -> None:
    """Lock files a killed git left behind, as actions/checkout removes them before reusing a clone."""
    for name in ("index.lock", "shallow.lock"):
        lock = path / ".git" / name
        if lock.exists():
            log.info(f"removing a stale {lock}")
            lock.unlink(missing_ok=True)


def recorded_bundles(git_dir: Path) -> set[str]:
    """The sha256 of each mirror bundle the clone was filled from (written by the last checkout)."""
    try:
        return set((git_dir / BUNDLES_RECORD).read_text().split())
    except OSError:
        return set()


def record_bundles(git_dir: Path, shas: list[str]) -> None:
    path = git_dir / BUNDLES_RECORD
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{s}\n" for s in shas))
    os.replace(tmp, path)
