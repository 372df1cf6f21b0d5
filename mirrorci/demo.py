"""`mirrorci demo`: the whole job end to end on a local store, no account needed.

It makes a bare origin from a repository (the one around the current directory,
or a generated sample), publishes it to a store directory, checks it out through
the mirror, and compares the result with a plain `git clone` of the same origin.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from . import log
from .checkout import CheckoutOptions, checkout
from .errors import MirrorciError
from .gitcmd import Git
from .publish import PublishOptions, publish


def _source_repo(source: Path | None, workdir: Path) -> Path:
    if source:
        return source
    top = Git(Path.cwd()).run("rev-parse", "--show-toplevel", check=False)
    if top.returncode == 0 and Git(Path.cwd()).ok("rev-parse", "--verify", "-q", "HEAD"):
        return Path(top.stdout.decode().strip())
    return make_sample(workdir / "sample")


def make_sample(path: Path) -> Path:
    """A small repository with branches, tags and a merge."""
    git = Git(path)
    path.mkdir(parents=True)
    git.run("init", "--quiet", "--initial-branch=main")
    env = {"GIT_AUTHOR_NAME": "mirrorci demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
           "GIT_COMMITTER_NAME": "mirrorci demo", "GIT_COMMITTER_EMAIL": "demo@example.invalid"}
    for n in range(5):
        (path / f"file{n}.txt").write_text(f"line {n}\n" * (n + 1))
        git.run("add", ".")
        git.run("commit", "--quiet", "-m", f"commit {n}", env=env)
    git.run("tag", "-a", "v1.0", "-m", "first release", env=env)
    git.run("checkout", "--quiet", "-b", "develop")
    (path / "develop.txt").write_text("work in progress\n")
    git.run("add", ".")
    git.run("commit", "--quiet", "-m", "develop", env=env)
    git.run("checkout", "--quiet", "main")
    return path


def snapshot(path: Path) -> dict[str, str]:
    git = Git(path)
    return {
        "refs": git.out("for-each-ref", "--format=%(refname) %(objectname)"),
        "head": git.out("rev-parse", "HEAD"),
        "branch": git.out("symbolic-ref", "-q", "HEAD"),
        "tree": git.out("ls-files", "-s"),
    }


def run_demo(workdir: Path | None, source: Path | None) -> dict[str, Any]:
    workdir = (workdir or Path(tempfile.mkdtemp(prefix="mirrorci-demo-"))).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    if any(p.name in ("origin.git", "store", "checkout", "plain-clone") for p in workdir.iterdir()):
        raise MirrorciError(f"--workdir {workdir} already holds a demo; give an empty directory")
    src = _source_repo(source, workdir)
    origin = workdir / "origin.git"
    with log.group(f"Making a bare origin from {src}"):
        Git().run("clone", "--quiet", "--bare", "--no-local", str(src), str(origin))
        Git(origin).run("repack", "-adbq")
    published = publish(PublishOptions(store=str(workdir / "store"), repo=origin, push=False))
    result = checkout(CheckoutOptions(remote_url=str(origin), path=workdir / "checkout", allow_file_urls=True))
    with log.group("Comparing with a plain git clone"):
        Git().run("clone", "--quiet", "--no-local", str(origin), str(workdir / "plain-clone"))
        same = snapshot(workdir / "checkout") == snapshot(workdir / "plain-clone")
    if not same:
        raise MirrorciError("the mirror checkout differs from git clone")
    log.info(f"demo OK: {result.bytes_from_mirror} bytes from the mirror ({result.method}, {result.apply_path} path), "
             f"{result.bytes_from_origin} from origin; identical to git clone. Files in {workdir}")
    return {"workdir": str(workdir), "publish": published, "checkout": result.to_json(), "identical_to_git_clone": same}
