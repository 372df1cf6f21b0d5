"""Origin decides what every name means: --ref, branches and tags never come from a mirror's say-so."""

from __future__ import annotations

import uuid

import pytest

from mirrorci.mirrorlist import REF_FETCH_GIT
from tests.attacks.helpers import (
    assert_accounted,
    assert_equals_git_clone,
    assert_failed_cleanly,
    checkout_ok,
    publish_bundle,
    run_checkout,
    run_git,
    set_mirror_blob,
)
from tests.support import forge
from tests.support.repos import git


@pytest.mark.parametrize("existed", [False, True], ids=["new-path", "empty-path"])
def test_ref_to_a_commit_only_the_mirror_has(served_origin, hostile, tmp_path, existed):
    """Issue case 8: `git clone` + `git checkout <sha>` fails for it, so must mirrorci."""
    bundle, idx, foreign = forge.with_extra_commit(served_origin.path, tmp_path / "forge")
    publish_bundle(served_origin.path, hostile, bundle, idx)
    clone = tmp_path / "git-clone"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(clone))
    assert run_git(clone, "checkout", "-q", foreign).returncode != 0, "origin must not have the commit"
    path = tmp_path / "co"
    if existed:
        path.mkdir()

    outcome = run_checkout(served_origin.git_url, path, "--ref", foreign)

    assert_failed_cleanly(outcome, path, existed)


def test_ref_to_a_commit_origin_has_still_works(served_origin, hostile, tmp_path):
    bundle, idx, _ = forge.with_extra_commit(served_origin.path, tmp_path / "forge")
    publish_bundle(served_origin.path, hostile, bundle, idx)
    commit = git(served_origin.path, "rev-parse", "main~2")

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--ref", commit)

    assert result["detached"] is True
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co", ref=commit)


@pytest.mark.parametrize("ref", ["v1.0", "main", "feature/x"])
def test_bundle_tips_that_differ_from_origins(served_origin, hostile, legit, tmp_path, ref):
    """The bundle names origin's tags and branches, pointing elsewhere (at objects it also carries)."""
    scratch = forge.scratch_repo(served_origin.path, tmp_path / "scratch.git")
    develop = git(served_origin.path, "rev-parse", "develop")
    if ref.startswith("v"):
        tag = (f"object {develop}\ntype commit\ntag {ref}\n"
               "tagger Mallory <m@attacker.invalid> 1700000000 +0000\n\nevil\n")
        target = forge.out(scratch, "hash-object", "-w", "-t", "tag", "--stdin", input=tag.encode())
        full = f"refs/tags/{ref}"
    else:
        target, full = develop, f"refs/heads/{ref}"
    lines = [line for line in forge.header_lines(legit.header) if not line.endswith(b" " + full.encode())]
    pack = forge.write_pack(scratch, forge.all_objects(served_origin.path) + [target], tmp_path / "pack")
    bundle = forge.make_header(lines + [f"{target} {full}".encode()]) + pack.data
    publish_bundle(served_origin.path, hostile, bundle, pack.idx)

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--ref", ref)

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co", ref=ref)
    assert_accounted(result)
    assert git(tmp_path / "co", "rev-parse", full) == git(served_origin.path, "rev-parse", full)


def test_git_mirror_with_a_rewritten_history(served_origin, git_daemon, git_serve_root, tmp_path):
    """A git mirror whose main is another commit with the same message and files plus evil.sh."""
    name = f"evil-mirror-{uuid.uuid4().hex[:8]}.git"
    mirror = git_serve_root / name
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(mirror))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(mirror), str(work))
    (work / "evil.sh").write_text("#!/bin/sh\necho pwned\n")
    git(work, "add", "evil.sh")
    git(work, "commit", "-q", "--amend", "--no-edit")
    git(work, "push", "-q", "--force", "origin", "main")
    set_mirror_blob(served_origin.path, REF_FETCH_GIT, git_daemon.url_for(name) + "\n")

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--prefer", "git")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert not (tmp_path / "co" / "evil.sh").exists()
    assert_accounted(result)
