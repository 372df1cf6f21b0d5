"""Unit tests for mirrorci.gitcmd: the minimum git version, ref transactions, repositories and their remotes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mirrorci import gitcmd
from mirrorci.errors import GitError, UsageError
from mirrorci.gitcmd import Git, GitTooOld
from tests.support.repos import git

OID_A = "a" * 40


@pytest.fixture
def fresh_check(monkeypatch):
    """The version check runs again in this test, as in a new process."""
    monkeypatch.setattr(gitcmd, "_version_ok", False)


def fake_git(tmp_path: Path, monkeypatch, version_line: str) -> None:
    """A `git` first on PATH that only answers `--version`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("text,expected", [
    ("git version 2.39.5", (2, 39)),
    ("git version 2.45.1.windows.1", (2, 45)),
    ("git version 2.39.3 (Apple Git-146)", (2, 39)),
    ("git version 3.0.0", (3, 0)),
    ("something else", None),
])
def test_parse_version(text, expected):
    assert gitcmd.parse_version(text) == expected


def test_too_old_git_is_one_clear_error(tmp_path, monkeypatch, fresh_check):
    fake_git(tmp_path, monkeypatch, "git version 2.25.1")
    with pytest.raises(GitTooOld) as raised:
        Git(tmp_path).run("status")
    message = str(raised.value)
    assert message == "git 2.31 or later is needed, found git version 2.25.1; install a newer git"
    assert raised.value.exit_code == 2 and "\n" not in message
    assert not isinstance(raised.value, GitError)  # no mirror method may take it for its own failure


def test_missing_git_is_one_clear_error(tmp_path, monkeypatch, fresh_check):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(GitTooOld, match=r"^git 2\.31 or later is needed and `git --version` failed"):
        Git(tmp_path).out("rev-parse", "HEAD")


def test_version_is_checked_once_per_process(tmp_path, monkeypatch, fresh_check):
    Git().out("--version")  # the real git passes and is remembered
    fake_git(tmp_path, monkeypatch, "git version 1.0.0")
    assert Git().out("--version") == "git version 1.0.0"  # not checked again


# --- update_refs -----------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path) -> Git:
    path = tmp_path / "r.git"
    git(tmp_path, "init", "--quiet", "--bare", str(path))
    return Git(path)


def blob(g: Git, text: str) -> str:
    return g.out("hash-object", "-w", "--stdin", input=text)


def refs(g: Git) -> dict[str, str]:
    lines = g.out("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_update_refs_writes_and_deletes_in_one_transaction(repo):
    a, b = blob(repo, "a"), blob(repo, "b")
    repo.update_refs({"refs/x/a": a, "refs/x/b": b})
    assert refs(repo) == {"refs/x/a": a, "refs/x/b": b}
    repo.update_refs({"refs/x/a": b}, ["refs/x/b"])
    assert refs(repo) == {"refs/x/a": b}
    repo.update_refs({})  # nothing to do: no git call that could fail
    assert refs(repo) == {"refs/x/a": b}


def test_update_refs_with_leases_changes_nothing_when_one_is_stale(repo):
    a, b, c = blob(repo, "a"), blob(repo, "b"), blob(repo, "c")
    repo.update_refs({"refs/x/a": a, "refs/x/b": b})
    with pytest.raises(GitError):  # refs/x/a moved since `old` was read
        repo.update_refs({"refs/x/a": c, "refs/x/new": c}, ["refs/x/b"], old={"refs/x/a": b, "refs/x/b": b})
    assert refs(repo) == {"refs/x/a": a, "refs/x/b": b}
    with pytest.raises(GitError):  # absent from `old`: must not exist yet
        repo.update_refs({"refs/x/a": c}, old={})
    repo.update_refs({"refs/x/a": c, "refs/x/new": c}, ["refs/x/b"], old={"refs/x/a": a, "refs/x/b": b})
    assert refs(repo) == {"refs/x/a": c, "refs/x/new": c}


def test_delete_refs_under_a_prefix(repo):
    a = blob(repo, "a")
    repo.update_refs({"refs/have/1": a, "refs/have/2": a, "refs/keep/1": a})
    repo.delete_refs("refs/have/")
    assert refs(repo) == {"refs/keep/1": a}
    repo.delete_refs("refs/have/")  # nothing left: no error
    assert refs(repo) == {"refs/keep/1": a}


# --- open_repository / remote_url -------------------------------------------------------------------------


def test_open_repository_reads_remotes(tmp_path):
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", str(work))
    git(work, "remote", "add", "origin", "https://git.example/o/r.git")
    git(work, "remote", "add", "mirror", "git@git.example:o/r.git")
    found = gitcmd.open_repository(work)
    assert found.git_dir == work / ".git" and found.top == work
    assert found.remotes == {"origin": "https://git.example/o/r.git", "mirror": "git@git.example:o/r.git"}
    assert gitcmd.remote_url(work, "mirror") == "git@git.example:o/r.git"
    git(tmp_path, "init", "--quiet", "--bare", "bare.git")
    bare = gitcmd.open_repository(tmp_path / "bare.git")
    assert bare.top == bare.git_dir == tmp_path / "bare.git" and bare.remotes == {}


@pytest.mark.parametrize("given", ["https://h.example/r.git", "/srv/r.git", "./r.git", "../r.git", "git@h.example:o/r"])
def test_remote_url_takes_urls_and_paths_as_they_are(tmp_path, given):
    git(tmp_path, "init", "--quiet", "w")
    assert gitcmd.remote_url(tmp_path / "w", given) == given


def test_remote_url_refuses_an_unknown_name(tmp_path):
    git(tmp_path, "init", "--quiet", "w")
    with pytest.raises(UsageError, match=r"^--remote 'upstream': no such remote in the repository"):
        gitcmd.remote_url(tmp_path / "w", "upstream")


def test_open_repository_refuses_a_plain_directory(tmp_path):
    with pytest.raises(UsageError, match=r"not a git repository; point it at a clone or a bare repository$"):
        gitcmd.open_repository(tmp_path)
