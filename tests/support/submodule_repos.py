"""A superproject with submodules, served by the test git servers, and ways to compare work trees.

The tree (names made unique per test, so one served root can hold many trees):

    super/                      files, .gitmodules
      libs/a      -> A          two commits; the gitlink is the first one (not the branch tip)
      vendor/b    -> B          its tip; B has a submodule of its own:
        nested    -> N          ../N relative to B's URL; the gitlink is N's first commit

Relative URLs (`../A.git`) resolve against whatever URL the superproject is cloned
from, so the same tree works over git:// and http://. `b_url` replaces B's URL.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .repos import git


@dataclass(frozen=True)
class ServedRepo:
    name: str
    path: Path  # the bare repository the servers serve
    git_url: str
    http_url: str


@dataclass
class SubmoduleTree:
    super: ServedRepo
    a: ServedRepo
    b: ServedRepo
    n: ServedRepo
    commits: dict[str, list[str]] = field(default_factory=dict)  # repo letter -> its commits, oldest first


def serve(work: Path, root: Path, daemon: Any, http: Any, stem: str) -> ServedRepo:
    """A bare copy of the work repository `work` under the served root."""
    name = f"{stem}-{uuid.uuid4().hex[:8]}.git"
    path = root / name
    git(work.parent, "clone", "-q", "--bare", "--no-local", str(work), str(path))
    git(path, "config", "uploadpack.allowAnySHA1InWant", "true")
    return ServedRepo(name, path, daemon.url_for(name), http.url_for(name))


def commit(work: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "add", "--", *files)  # not -A: that would drop gitlinks, which have no directory here
    git(work, "commit", "-qm", message)
    return git(work, "rev-parse", "HEAD")


def link(work: Path, name: str, path: str, url: str, oid: str) -> None:
    """Record a submodule without cloning it: its .gitmodules entry and its gitlink."""
    git(work, "config", "-f", ".gitmodules", f"submodule.{name}.path", path)
    git(work, "config", "-f", ".gitmodules", f"submodule.{name}.url", url)
    git(work, "add", ".gitmodules")
    git(work, "update-index", "--add", "--cacheinfo", f"160000,{oid},{path}")


def new_work(tmp: Path, name: str) -> Path:
    work = tmp / name
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    return work


def make_tree(tmp: Path, root: Path, daemon: Any, http: Any, b_url: str | None = None) -> SubmoduleTree:
    """Build and serve the tree above; `b_url` (a format string taking `name`) replaces `../{name}`."""
    commits: dict[str, list[str]] = {}
    n_work = new_work(tmp, "n")
    commits["n"] = [commit(n_work, {"nested.txt": "nested 1\n"}, "n1"), commit(n_work, {"nested.txt": "n2\n"}, "n2")]
    n = serve(n_work, root, daemon, http, "nested")
    a_work = new_work(tmp, "a")
    commits["a"] = [commit(a_work, {"a.txt": "a 1\n", "src/a.py": "A = 1\n"}, "a1"),
                    commit(a_work, {"a.txt": "a 2\n"}, "a2")]
    git(a_work, "tag", "-a", "v1", "-m", "v1", commits["a"][0])
    a = serve(a_work, root, daemon, http, "sub-a")
    b_work = new_work(tmp, "b")
    commit(b_work, {"b.txt": "b 1\n"}, "b1")
    link(b_work, "nested", "nested", f"../{n.name}", commits["n"][0])
    commits["b"] = [git(b_work, "rev-parse", "HEAD"), commit(b_work, {"b.txt": "b 2\n"}, "b2 with nested")]
    b = serve(b_work, root, daemon, http, "sub-b")
    s_work = new_work(tmp, "super")
    commit(s_work, {"README.md": "super\n", "src/main.py": "print(1)\n"}, "s1")
    link(s_work, "a", "libs/a", f"../{a.name}", commits["a"][0])
    link(s_work, "vendor/b", "vendor/b", (b_url or "../{name}").format(name=b.name), commits["b"][-1])
    commits["super"] = [commit(s_work, {"README.md": "super with submodules\n"}, "s2")]
    return SubmoduleTree(serve(s_work, root, daemon, http, "super"), a, b, n, commits)


def move_submodule(tree: SubmoduleTree, tmp: Path) -> str:
    """A new commit on A, and a superproject commit whose gitlink points at it; returns A's new commit."""
    tmp.mkdir(parents=True, exist_ok=True)
    a_work = tmp / f"a-{uuid.uuid4().hex[:6]}"
    git(tmp, "clone", "-q", str(tree.a.path), str(a_work))
    new = commit(a_work, {"a.txt": "a 3\n", "new.txt": "new\n"}, "a3")
    git(a_work, "push", "-q", "origin", "HEAD:main")
    s_work = tmp / f"s-{uuid.uuid4().hex[:6]}"
    git(tmp, "clone", "-q", str(tree.super.path), str(s_work))
    git(s_work, "update-index", "--cacheinfo", f"160000,{new},libs/a")
    git(s_work, "commit", "-qm", "move libs/a")
    git(s_work, "push", "-q", "origin", "HEAD:main")
    return new


def clone_recursive(url: str, dest: Path, *args: str) -> Path:
    """`git clone --recurse-submodules`, the reference a checkout with submodules must equal."""
    git(dest.parent, "clone", "-q", "--recurse-submodules", *args, url, str(dest))
    return dest


def worktree_files(top: Path) -> dict[str, bytes]:
    """Every file of a work tree and of the submodules inside it (git's own `.git` entries left out)."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if name != ".git":
                path = Path(dirpath) / name
                files[path.relative_to(top).as_posix()] = path.read_bytes()
    return files


def submodule_status(top: Path, *args: str) -> list[str]:
    """`git submodule status` lines: ' ' clean, '-' not initialized, '+' another commit, 'U' conflicts."""
    proc = run_git(top, "submodule", "status", *args)  # not git(): its strip() would eat the first flag
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def git_dir_of(top: Path, path: str) -> str:
    """Where a work tree's git directory is, relative to the superproject's top."""
    absolute = git(top / path, "rev-parse", "--absolute-git-dir")
    return Path(os.path.relpath(absolute, top)).as_posix()


def sparse_recursive_reference(url: str, dest: Path, cone_dir: str) -> Path:
    """What git itself leaves for a sparse superproject whose submodules are then updated."""
    git(dest.parent, "clone", "-q", "--no-checkout", url, str(dest))
    git(dest, "sparse-checkout", "set", "--cone", cone_dir)
    git(dest, "checkout", "-q")
    git(dest, "submodule", "update", "-q", "--init")
    return dest


def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git with the test environment, its exit code left to the caller."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
