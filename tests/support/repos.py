"""Deterministic git repositories for tests, built with the git CLI.

The sample repo packs in the awkward cases a mirror must preserve (merges,
annotated/lightweight/blob tags, unicode paths, modes, symlinks, a large
incompressible file). Fixed identity and dates make object ids reproducible.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_EPOCH = 1_700_000_000  # fixed base timestamp for the sample repo
_ADVANCE_EPOCH = _EPOCH + 10_000_000  # later base for advance_origin commits
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Mirror Tester",
    "GIT_AUTHOR_EMAIL": "tester@example.invalid",
    "GIT_COMMITTER_NAME": "Mirror Tester",
    "GIT_COMMITTER_EMAIL": "tester@example.invalid",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git in ``cwd`` isolated from user/system config; return stripped stdout."""
    full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_TERMINAL_PROMPT": "0", **_IDENTITY, **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stderr}")
    return proc.stdout.strip()


class _Builder:
    """Runs git in one work tree with a clock that ticks once per commit/tag."""

    def __init__(self, work: Path, epoch: int) -> None:
        self.work = work
        self._clock = epoch

    def _tick(self) -> dict[str, str]:
        self._clock += 60
        stamp = f"@{self._clock} +0000"
        return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}

    def run(self, *args: str) -> str:
        return git(self.work, *args, env=self._tick())

    def write(self, rel: str, content: str | bytes, mode: int | None = None) -> None:
        path = self.work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if mode is not None:
            path.chmod(mode)

    def commit_files(self, message: str, files: dict[str, str | bytes]) -> str:
        """Write ``files`` (path -> content), stage everything, commit; return the oid."""
        for rel, content in files.items():
            self.write(rel, content)
        git(self.work, "add", "-A")
        self.run("commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")


def make_sample_repo(path: Path, *, big_file_mb: int = 3) -> Path:
    """Create the sample non-bare repo at ``path`` (checked out on ``main``); return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "core.autocrlf", "false")
    b = _Builder(path, _EPOCH)

    b.commit_files("Initial commit", {"README.md": "# Sample\n"})
    b.commit_files("Add app", {"src/app.py": "print('hello')\n"})
    b.write("scripts/run.sh", "#!/bin/sh\necho run\n", mode=0o755)
    b.commit_files("Add executable script", {})
    os.symlink("README.md", path / "link-to-readme")
    b.commit_files("Add symlink", {})
    b.commit_files("Add obsolete notes", {"obsolete.txt": "to be removed\n"})
    (path / "obsolete.txt").unlink()
    b.commit_files("Remove obsolete notes", {})
    b.commit_files("Add unicode and spaced paths", {
        "docs/résumé.txt": "curriculum vitae\n",
        "数据/文件.txt": "数据文件\n",
        "docs/with space.txt": "spaces are fine\n",
    })
    if big_file_mb > 0:
        data = random.Random(1234).randbytes(big_file_mb * 1024 * 1024)
        b.commit_files("Add big incompressible file", {"data/big.bin": data})
    b.commit_files("Update README", {"README.md": "# Sample\n\nVersion 1.0\n"})
    b.run("tag", "-a", "v1.0", "-m", "Release 1.0")
    b.commit_files("Tweak app", {"src/app.py": "print('hello, world')\n"})
    b.run("tag", "v1.1")  # lightweight

    b.run("checkout", "-q", "-b", "develop")
    b.commit_files("Develop: add module", {"src/dev.py": "DEV = 1\n"})
    b.run("checkout", "-q", "-b", "feature/x")
    b.commit_files("Feature x: part 1", {"src/x.py": "X = 1\n"})
    b.commit_files("Feature x: part 2", {"src/x.py": "X = 2\n"})
    b.run("checkout", "-q", "develop")
    b.commit_files("Develop: tweak module", {"src/dev.py": "DEV = 2\n"})
    b.run("merge", "-q", "--no-ff", "feature/x", "-m", "Merge branch 'feature/x' into develop")
    b.commit_files("Develop: after merge", {"CHANGELOG.md": "- feature x\n"})
    b.run("tag", "-a", "v2.0", "-m", "Release 2.0")

    b.run("checkout", "-q", "feature/x")
    b.commit_files("Feature x: part 3", {"src/x.py": "X = 3\n"})

    b.run("checkout", "-q", "main")
    b.commit_files("Main: docs", {"docs/guide.md": "Guide\n"})
    b.commit_files("Main: more docs", {"docs/guide.md": "Guide\n\nMore.\n"})
    blob = git(path, "rev-parse", "HEAD:README.md")
    b.run("tag", "-a", "blob-tag", blob, "-m", "Tag pointing at a blob")
    return path


def make_bare_origin(src: Path, dest_root: Path, name: str = "origin.git") -> Path:
    """Bare clone of ``src`` with bitmaps and permissive upload-pack; return its path."""
    dest = Path(dest_root) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(Path(dest_root), "clone", "-q", "--bare", "--no-local", str(src), str(dest))
    git(dest, "config", "uploadpack.allowAnySHA1InWant", "true")
    git(dest, "config", "uploadpack.allowFilter", "true")
    git(dest, "repack", "-adbq")
    return dest


def advance_origin(bare: Path, tmp: Path) -> None:
    """Move ``bare`` on: +2 commits on main, add ``new-branch``, drop ``feature/x``,
    move lightweight tag ``v1.1`` to the new main tip (deterministically)."""
    Path(tmp).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="advance-", dir=tmp))
    git(work, "clone", "-q", "--no-local", str(bare), ".")
    git(work, "checkout", "-q", "main")
    b = _Builder(work, _ADVANCE_EPOCH)
    b.commit_files("Main: advance 1", {"ADVANCE.md": "one\n"})
    b.commit_files("Main: advance 2", {"ADVANCE.md": "one\ntwo\n"})
    b.run("branch", "new-branch", "HEAD~1")
    b.run("tag", "-f", "v1.1", "HEAD")
    git(work, "push", "-q", "--atomic", "--force", "origin", "main", "new-branch",
        ":refs/heads/feature/x", "refs/tags/v1.1:refs/tags/v1.1")


def repo_snapshot(path: Path) -> dict[str, Any]:
    """Observable state of a clone: refs, HEAD, index, origin/upstream config, cleanliness."""
    path = Path(path)

    def cfg(*keys: str) -> list[str]:
        out = git(path, "config", "--get-all", *keys, check=False)
        return out.splitlines() if out else []

    refs = git(path, "for-each-ref", "--format=%(refname) %(objectname)")
    head_ref = git(path, "symbolic-ref", "-q", "HEAD", check=False) or None
    head = git(path, "rev-parse", "-q", "--verify", "HEAD", check=False) or None
    bare = git(path, "rev-parse", "--is-bare-repository") == "true"
    branch = head_ref.removeprefix("refs/heads/") if head_ref else None
    return {
        "refs": sorted(tuple(line.split(" ", 1)) for line in refs.splitlines()),
        "head_ref": head_ref,
        "head": head,
        "index": None if bare else git(path, "-c", "core.quotepath=off", "ls-files", "-s"),
        "remote_url": (cfg("remote.origin.url") or [None])[0],
        "remote_fetch": cfg("remote.origin.fetch"),
        "branch_remote": (cfg(f"branch.{branch}.remote") or [None])[0] if branch else None,
        "branch_merge": (cfg(f"branch.{branch}.merge") or [None])[0] if branch else None,
        "clean": None if bare else git(path, "status", "--porcelain") == "",
    }


def fsck_ok(path: Path) -> bool:
    """True when ``git fsck --no-dangling`` passes (object graph complete and valid)."""
    full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    proc = subprocess.run(["git", "fsck", "--no-dangling"], cwd=path, env=full_env,
                          capture_output=True)
    return proc.returncode == 0
