"""Submodule URLs resolved as git resolves them, and .gitmodules read as git reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirrorci.errors import MirrorciError
from mirrorci.gitcmd import Git
from mirrorci.submodules import _modules_dir, list_submodules, resolve_url, url_scheme
from tests.support.repos import git

CASES = [
    # (superproject's origin URL, .gitmodules URL, resolved)
    ("https://example.com/org/super.git", "../sub.git", "https://example.com/org/sub.git"),
    ("https://example.com/org/super.git/", "../sub.git", "https://example.com/org/sub.git"),
    ("https://example.com/org/super", "../sub", "https://example.com/org/sub"),
    ("https://example.com/org/super.git", "./sub.git", "https://example.com/org/super.git/sub.git"),
    ("https://example.com/org/super.git", "./../sub.git", "https://example.com/org/sub.git"),
    ("https://example.com/org/super.git", "../../other/sub.git", "https://example.com/other/sub.git"),
    ("https://example.com/org/super.git", "../sub/", "https://example.com/org/sub"),
    ("https://user:pw@example.com:8443/org/super.git", "../sub.git", "https://user:pw@example.com:8443/org/sub.git"),
    ("ssh://git@example.com:2222/org/super.git", "../sub.git", "ssh://git@example.com:2222/org/sub.git"),
    ("git://example.com/super.git", "../sub.git", "git://example.com/sub.git"),
    ("git@example.com:org/super.git", "../sub.git", "git@example.com:org/sub.git"),
    ("git@example.com:org/super.git", "../../sub.git", "git@example.com:sub.git"),
    ("git@example.com:super.git", "../sub.git", "git@example.com:sub.git"),
    ("git@example.com:super.git", "./sub.git", "git@example.com:super.git/sub.git"),
    ("/srv/git/super.git", "../sub.git", "/srv/git/sub.git"),
    ("file:///srv/git/super.git", "../sub.git", "file:///srv/git/sub.git"),
    # Absolute URLs are taken as they are.
    ("https://example.com/org/super.git", "https://other.example/x/sub.git", "https://other.example/x/sub.git"),
    ("https://example.com/org/super.git", "git@other.example:x/sub.git", "git@other.example:x/sub.git"),
    ("https://example.com/org/super.git", "/srv/sub.git", "/srv/sub.git"),
]


@pytest.mark.parametrize("remote,url,expected", CASES)
def test_resolve_url(remote, url, expected):
    assert resolve_url(url, remote) == expected


@pytest.mark.parametrize("remote,url,expected", CASES)
def test_resolve_url_agrees_with_git_submodule_init(remote, url, expected, tmp_path):
    """git itself is the reference: `git submodule init` writes the URL it resolved into the config."""
    repo = tmp_path / "super"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "remote.origin.url", remote)
    git(repo, "config", "-f", ".gitmodules", "submodule.s.path", "s")
    git(repo, "config", "-f", ".gitmodules", "submodule.s.url", url)
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},s")
    git(repo, "add", ".gitmodules")
    git(repo, "commit", "-qm", "s")
    git(repo, "submodule", "init")
    assert resolve_url(url, remote) == git(repo, "config", "submodule.s.url")


def test_a_relative_url_cannot_climb_above_the_host():
    with pytest.raises(MirrorciError, match="no path component left"):
        resolve_url("../../sub.git", "super.git")


@pytest.mark.parametrize("url,scheme", [
    ("https://example.com/x.git", "https"), ("HTTP://example.com/x", "http"), ("git://h/x", "git"),
    ("ssh://git@h/x", "ssh"), ("git@h:x.git", "ssh"), ("h:x", "ssh"), ("/srv/x.git", "file"),
    ("./x", "file"), ("x/y:z", "file"), ("file:///srv/x", "file"), ("ext::sh -c touch% /tmp/pwned", "ext"),
    ("fd::17", "fd"),
])
def test_url_scheme(url, scheme):
    assert url_scheme(url) == scheme


def _superproject(tmp_path: Path, gitmodules: dict[str, str], links: dict[str, str]) -> Path:
    repo = tmp_path / "super"
    repo.mkdir()
    git(repo, "init", "-q")
    for key, value in gitmodules.items():
        git(repo, "config", "-f", ".gitmodules", key, value)
    for path, oid in links.items():
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{oid},{path}")
    if gitmodules:
        git(repo, "add", ".gitmodules")
    git(repo, "commit", "-qm", "links")
    return repo


def test_list_submodules_maps_gitlinks_to_their_gitmodules_entries(tmp_path):
    a, b = "a" * 40, "b" * 40
    repo = _superproject(tmp_path, {
        "submodule.lib one.path": "libs/one", "submodule.lib one.url": "../one.git",
        "submodule.v2.0.path": "vendor/two", "submodule.v2.0.url": "https://h/two.git",
        "submodule.v2.0.update": "none",
        "submodule.unused.path": "gone", "submodule.unused.url": "../gone.git",
    }, {"libs/one": a, "vendor/two": b})
    found = {s.path: s for s in list_submodules(Git(repo), repo)}
    assert set(found) == {"libs/one", "vendor/two"}
    assert (found["libs/one"].name, found["libs/one"].url, found["libs/one"].commit) == ("lib one", "../one.git", a)
    assert (found["vendor/two"].name, found["vendor/two"].update) == ("v2.0", "none")


def test_gitmodules_outside_a_sparse_work_tree_is_read_from_the_index(tmp_path):
    repo = _superproject(tmp_path, {"submodule.s.path": "s", "submodule.s.url": "../s.git"}, {"s": "c" * 40})
    (repo / ".gitmodules").unlink()
    assert [s.url for s in list_submodules(Git(repo), repo)] == ["../s.git"]


def test_a_gitlink_without_a_url_is_an_error(tmp_path):
    repo = _superproject(tmp_path, {}, {"orphan": "d" * 40})
    with pytest.raises(MirrorciError, match="no url found for submodule path 'orphan'"):
        list_submodules(Git(repo), repo)


def test_a_suspicious_name_is_ignored_as_git_ignores_it(tmp_path):
    repo = _superproject(tmp_path, {"submodule.../../evil.path": "s", "submodule.../../evil.url": "../s.git"},
                         {"s": "e" * 40})
    with pytest.raises(MirrorciError, match="no url found"):
        list_submodules(Git(repo), repo)


def test_a_name_without_a_component_is_ignored(tmp_path):
    repo = _superproject(tmp_path, {"submodule./.path": "s", "submodule./.url": "../s.git"}, {"s": "f" * 40})
    with pytest.raises(MirrorciError, match="no url found"):
        list_submodules(Git(repo), repo)


@pytest.mark.parametrize("name,rel", [("a", "a"), ("vendor/b", "vendor/b"), ("/etc", "etc"), ("x//./y", "x/y")])
def test_a_name_is_a_directory_under_git_modules_as_git_joins_it(tmp_path, name, rel):
    git(tmp_path, "init", "-q")
    assert _modules_dir(Git(tmp_path), name) == tmp_path / ".git" / "modules" / rel
