"""From objects to files: HEAD and the local branch, sparse checkout, and the work tree,
with verification running beside the work tree's writing (the two read the same objects).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from . import refnames, verify
from .errors import GitError, MirrorciError, UsageError
from .gitcmd import Git
from .remote import RemoteRefs
from .verify import Verified

# Writing the work tree is the one step a mirror cannot shorten: use every core for it,
# and bound git's pack windows and delta cache so a large pack does not balloon memory.
WORKTREE_CONFIG = (
    "checkout.workers=0",
    "checkout.thresholdForParallelism=1000",
    "core.packedGitWindowSize=16m",
    "core.packedGitLimit=64m",
    "core.deltaBaseCacheLimit=32m",
)
# LFS files are filled afterwards (from the mirror when asked for, see lfs/), never by a
# smudge filter during the checkout, as actions/checkout does.
NO_SMUDGE = {"GIT_LFS_SKIP_SMUDGE": "1"}


class Verifier:
    """Verification on the side, while the work tree is written."""

    def __init__(self, git: Git, tips: list[str], commit: str, scope: str, paths: list[str] | None = None) -> None:
        self.scope = scope
        self.paths = paths
        self.outcome: Verified | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(git, tips, commit), daemon=True)
        self.thread.start()

    def _run(self, git: Git, tips: list[str], commit: str) -> None:
        try:
            self.outcome = verify.verify(git, tips, commit, self.scope, self.paths)
        except BaseException as exc:
            self.outcome = exc

    def result(self) -> dict[str, Any]:
        self.thread.join()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return {"scope": self.scope, "objects": self.outcome.objects, "bytes": self.outcome.bytes,
                "seconds": round(self.outcome.seconds, 3)}


def check_origin_serves(git: Git, origin: Git, url: str, oid: str, ref: str) -> None:
    """A commit id given with --ref or --commit must be one origin can serve, as `git clone` + `git checkout` needs.

    Reachable from a branch or tag origin advertised: fine. Otherwise origin is asked
    for it by id (a one-commit fetch into a scratch repository), so a commit that only
    a mirror's bundle holds is never checked out.
    """
    reachable = git.out("for-each-ref", "--count=1", "--contains", oid, "--format=%(refname)",
                        "refs/remotes/origin", "refs/tags")
    if reachable:
        return
    with tempfile.TemporaryDirectory(prefix="mirrorci-ref-") as tmp:
        scratch = Git(Path(tmp), env=origin.env)
        scratch.run("init", "--quiet", "--bare", f"--object-format={'sha256' if len(oid) == 64 else 'sha1'}")
        if not scratch.ok("fetch", "--quiet", "--depth=1", "--filter=tree:0", "--no-tags", url, oid):
            raise UsageError(
                f"--ref {ref}: origin does not have that commit; give a branch, tag or a commit origin serves"
            )


def set_head(git: Git, ref: str | None, commit: str | None, remote: RemoteRefs) -> tuple[str, bool]:
    """Point HEAD where `git clone --branch <ref>` (and actions/checkout's `commit`) would.

    Returns the ref checked out (a commit id when detached at a commit) and whether HEAD is detached.
    """
    default = remote.head_target if remote.head_target in remote.tips() else None
    if default and git.ok("rev-parse", "--verify", "--quiet", refnames.tracking_name(default)):
        git.run("symbolic-ref", "refs/remotes/origin/HEAD", refnames.tracking_name(default))
    full = refnames.resolve_ref(ref, remote) if ref else (default if not commit else None)
    if ref and not full and not refnames.wanted_commit(ref, remote) and not commit:
        raise UsageError(f"--ref {ref!r}: origin has no such branch or tag; give a branch, tag or full commit id")
    if full and full.startswith("refs/heads/"):
        branch = full[len("refs/heads/"):]
        git.run("update-ref", f"refs/heads/{branch}", commit or remote.tips()[full])
        git.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        git.run("config", f"branch.{branch}.remote", "origin")
        git.run("config", f"branch.{branch}.merge", full)
        return full, False
    if full:  # a tag: detached, as `git clone --branch <tag>` does
        oid, name = _commit_of(git, commit or remote.tips()[full], ref or full), full
    elif ref or commit:
        oid = _commit_of(git, commit or refnames.wanted_commit(ref, remote) or str(ref), str(ref or commit))
        name = oid
    else:
        # No default branch advertised: take the first branch, as a last resort.
        first = sorted(r for r in remote.tips() if r.startswith("refs/heads/"))
        if not first:
            raise MirrorciError("origin advertises no branch; pass --ref with a tag or commit")
        return set_head(git, first[0][len("refs/heads/"):], None, remote)
    git.run("update-ref", "--no-deref", "HEAD", oid)
    return name, True


def _commit_of(git: Git, target: str, asked: str) -> str:
    try:
        return git.out("rev-parse", "--verify", f"{target}^{{commit}}")
    except GitError:
        raise UsageError(f"--ref {asked}: origin does not have that commit") from None


def cone_pathspecs(patterns: list[str]) -> list[str]:
    """What a cone-mode sparse checkout of these directories writes, as pathspecs: the files at
    the top, every file under each directory, and the files directly in each of its parents."""
    specs = [":(glob)*"]
    for pattern in patterns:
        directory = pattern.strip("/")
        if not directory:
            return []  # the whole tree
        specs.append(f":(literal){directory}")
        parts = directory.split("/")
        specs += [f":(glob){_glob_escape('/'.join(parts[:i]))}/*" for i in range(1, len(parts))]
    return sorted(set(specs))


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[\\" else c for c in text)


def set_sparse(git: Git, patterns: list[str], cone: bool) -> None:
    """Sparse checkout before any file is written, so only the selected paths ever are.

    With an empty index `sparse-checkout set` only writes its patterns. A clone updated
    in place changes its files to the new patterns here, or (no longer sparse) gets
    every file back, before the work tree moves to the new commit.
    """
    quiet = git.with_env(NO_SMUDGE)
    if patterns:
        quiet.run("sparse-checkout", "set", "--cone" if cone else "--no-cone", "--", *patterns)
    elif git.ok("config", "--get", "core.sparseCheckout"):
        quiet.run("sparse-checkout", "disable")


def write(target: Path, env: dict[str, str], reused: bool) -> None:
    """Write the work tree for HEAD: only changed files in a clone updated in place, then no stray files."""
    writer = Git(target, config=WORKTREE_CONFIG, env={**env, **NO_SMUDGE})
    writer.run("read-tree", "-u", "--reset", "HEAD")
    if reused:
        writer.run("clean", "-ffdx", "--quiet")
