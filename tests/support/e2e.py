"""The steps end-to-end tests share: publish to the static server, check out, compare with `git clone`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli
from tests.support.repos import fsck_ok, git, repo_snapshot


def publish_to_static(origin: Any, static_server: Any, tmp_path: Path, *extra: str,
                      prefix: str | None = None) -> dict[str, Any]:
    """Publish `origin` (a served origin, pushing refs over git://) to a directory the static server serves.

    A new store each time, unless `prefix` names the store of an earlier publish (a next release).
    """
    work = tmp_path / "publisher"
    git(tmp_path, "clone", "-q", "--mirror", origin.git_url, str(work))
    prefix = prefix or f"store-{uuid.uuid4().hex[:8]}"
    result = run_cli("publish", "--repo", work, "--store", static_server.root / prefix,
                     "--public-url", f"{static_server.url}/{prefix}", "--json", *extra)
    summary = result.json
    summary["prefix"] = prefix
    return summary


def plain_clone(url: str, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", url, str(dest))
    return dest


def checkout(url: str, dest: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`mirrorci checkout --json`, which must exit 0; its summary."""
    return run_cli("checkout", url, "--path", dest, "--json", *extra, env=env).json


def assert_same_as_git_clone(ours: Path, url: str, tmp_path: Path) -> None:
    """``ours`` equals a `git clone` of ``url``, is sound, and keeps no temporary files or mirror refs."""
    theirs = plain_clone(url, tmp_path / f"git-clone-{uuid.uuid4().hex[:6]}")
    assert repo_snapshot(ours) == repo_snapshot(theirs)
    assert fsck_ok(ours)
    leftovers = [p.name for p in (ours / ".git/objects/pack").iterdir() if p.name.startswith("tmp")]
    assert leftovers == []
    assert git(ours, "for-each-ref", "refs/mirrorci/", "refs/mirrors/") == ""
    assert git(ours, "count-objects").startswith("0 objects")  # no loose leftovers (mirror blobs, ...)


def push_pull_request_ref(origin: Any, tmp_path: Path) -> tuple[Path, str]:
    """A commit that exists on origin only as refs/pull/7/merge, as GitHub makes for a pull request."""
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", origin.git_url, str(work))
    (work / "pr.txt").write_text("from a pull request\n")
    git(work, "add", "pr.txt")
    git(work, "commit", "-qm", "pr change")
    git(work, "push", "-q", "origin", "HEAD:refs/pull/7/merge")
    return work, git(work, "rev-parse", "HEAD")
