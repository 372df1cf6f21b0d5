"""End to end: submodules, each checked out through its own origin's mirrors, equal to `git clone --recurse-submodules`.

The tree (tests/support/submodule_repos.py): a superproject with submodule A (mirrored)
and B (not mirrored), B holding submodule N (mirrored) of its own.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.support.cli import run_cli
from tests.support.e2e import checkout, publish_to_static
from tests.support.repos import fsck_ok, git, repo_snapshot
from tests.support.submodule_repos import (
    clone_recursive,
    git_dir_of,
    make_tree,
    move_submodule,
    run_git,
    sparse_recursive_reference,
    submodule_status,
    worktree_files,
)

TOKEN = "tok-" + uuid.uuid4().hex


@pytest.fixture
def tree(tmp_path, git_serve_root, git_daemon, git_http, static_server):
    """The tree, with the superproject, A and N published to the static server; B publishes nothing."""
    built = make_tree(tmp_path / "build", git_serve_root, git_daemon, git_http)
    for repo in (built.super, built.a, built.n):
        publish_to_static(repo, static_server, _fresh(tmp_path / f"publish-{repo.name}"))
    git_http.reset()
    static_server.reset()
    return built


def _fresh(path):
    path.mkdir(parents=True)
    return path


def _rows(result):
    return {row["path"]: row for row in result["submodules"]}


@pytest.mark.parametrize("transport", ["http", "git"])
def test_recursive_checkout_equals_git_clone_with_each_submodule_from_its_own_mirror(tree, tmp_path, transport):
    url = tree.super.http_url if transport == "http" else tree.super.git_url
    ours = tmp_path / "ours"

    result = checkout(url, ours, "--submodules", "recursive")

    theirs = clone_recursive(url, tmp_path / "theirs")
    assert worktree_files(ours) == worktree_files(theirs)
    assert submodule_status(ours, "--recursive") == submodule_status(theirs, "--recursive")
    assert all(line.startswith(" ") for line in submodule_status(ours, "--recursive"))
    for path in ("", "libs/a", "vendor/b", "vendor/b/nested"):
        assert repo_snapshot(ours / path) == repo_snapshot(theirs / path), path
        assert git_dir_of(ours, path) == git_dir_of(theirs, path), path
        assert fsck_ok(ours / path), path
    assert git(ours / "libs/a", "rev-parse", "HEAD") == tree.commits["a"][0]  # the gitlink, not A's tip
    assert git(ours, "config", "submodule.a.url") == url.replace(tree.super.name, tree.a.name)
    assert git(ours, "config", "submodule.a.active") == "true"

    rows = _rows(result)
    assert list(rows) == ["libs/a", "vendor/b", "vendor/b/nested"]  # flat, parents before their submodules
    mirrored, plain, nested = rows["libs/a"], rows["vendor/b"], rows["vendor/b/nested"]
    assert (mirrored["name"], mirrored["parent"], mirrored["commit"]) == ("a", None, tree.commits["a"][0])
    assert mirrored["method"] == "http", mirrored["fallbacks"]
    assert mirrored["bytes_from_mirror"] > 0 and mirrored["bytes_from_origin"] == 0
    assert plain["method"] == "origin" and plain["bytes_from_mirror"] == 0 and plain["bytes_from_origin"] > 0
    assert any("no usable mirror" in fallback["reason"] for fallback in plain["fallbacks"])
    assert (nested["name"], nested["parent"], nested["commit"]) == ("nested", "vendor/b", tree.commits["n"][0])
    assert nested["method"] == "http" and nested["bytes_from_origin"] == 0
    assert mirrored["url"] == url.replace(tree.super.name, tree.a.name)


def test_submodules_true_does_not_recurse(tree, tmp_path):
    ours = tmp_path / "ours"

    result = checkout(tree.super.http_url, ours, "--submodules", "true")

    assert [row["path"] for row in result["submodules"]] == ["libs/a", "vendor/b"]
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", tree.super.http_url, str(theirs))
    git(theirs, "submodule", "update", "-q", "--init")
    assert worktree_files(ours) == worktree_files(theirs)
    status = submodule_status(ours, "--recursive")
    assert status == submodule_status(theirs, "--recursive")
    assert [line[0] for line in status] == [" ", " ", "-"]  # nested: not initialized
    assert not any((ours / "vendor/b/nested").iterdir())


def test_without_submodules_nothing_is_checked_out(tree, tmp_path):
    result = checkout(tree.super.http_url, tmp_path / "ours")
    assert result["submodules"] == []
    assert not any((tmp_path / "ours/libs/a").iterdir())


def test_the_token_goes_to_submodules_on_the_superprojects_server_only(tmp_path, git_serve_root, git_daemon,
                                                                        git_http, static_server):
    # B (and N inside it, by its relative URL) lives on "localhost": the same server, another host name.
    port = git_http.url_for("x").split(":")[2].split("/")[0]
    tree = make_tree(tmp_path / "build", git_serve_root, git_daemon, git_http,
                     b_url=f"http://localhost:{port}/{{name}}")
    publish_to_static(tree.a, static_server, _fresh(tmp_path / "publish-a"))
    git_http.reset()
    ours = tmp_path / "ours"

    out = run_cli("checkout", tree.super.http_url, "--path", ours, "--json", "--submodules", "recursive",
                  "--persist-credentials", env={"MIRRORCI_TOKEN": TOKEN, "RUNNER_TEMP": ""})

    rows = _rows(out.json)
    assert rows["vendor/b"]["url"] == f"http://localhost:{port}/{tree.b.name}"
    header = "basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    sent = [(path, headers) for (_, path), headers in zip(git_http.requests, git_http.headers_seen, strict=True)]

    def auth_of(repo):
        return {headers.get("Authorization") for path, headers in sent if path.startswith(f"/{repo.name}/")}

    assert auth_of(tree.super) == {header} and auth_of(tree.a) == {header}  # A's mirror list is read from origin
    assert auth_of(tree.b) == {None} and auth_of(tree.n) == {None}
    assert all(TOKEN not in str(headers) for headers in static_server.headers_seen)
    assert TOKEN not in out.stderr and TOKEN not in out.stdout
    # Persisted like the superproject's, in the submodule that has the token; still valid after its
    # git directory moved under .git/modules.
    included = git(ours / "libs/a", "config", "--get-all", "include.path").splitlines()
    assert included and all((ours / ".git/modules/a").as_posix() in path for path in included)
    assert run_git(ours / "libs/a", "config", "--get-regexp", r"http\..*\.extraheader").returncode == 0
    assert run_git(ours / "vendor/b", "config", "--get-all", "include.path").returncode == 1
    git_http.reset()
    git(ours / "libs/a", "fetch", "-q", "origin")
    assert auth_of(tree.a) == {header}


def test_an_ssh_url_on_the_superprojects_host_is_fetched_over_its_http_url(tmp_path, git_serve_root, git_daemon,
                                                                           git_http):
    # No ssh key given: as actions/checkout's url.<server>.insteadOf git@<host>: makes git do.
    tree = make_tree(tmp_path / "build", git_serve_root, git_daemon, git_http, b_url="git@127.0.0.1:{name}")
    ours = tmp_path / "ours"

    result = checkout(tree.super.http_url, ours, "--submodules", "recursive", "--persist-credentials")

    assert [row["path"] for row in result["submodules"]] == ["libs/a", "vendor/b", "vendor/b/nested"]
    assert all(line.startswith(" ") for line in submodule_status(ours, "--recursive"))
    assert git(ours / "vendor/b", "config", "remote.origin.url") == f"git@127.0.0.1:{tree.b.name}"
    assert git(ours / "vendor/b/nested", "config", "remote.origin.url") == f"git@127.0.0.1:{tree.n.name}"
    assert any(path.startswith(f"/{tree.n.name}/") for _, path in git_http.requests)
    # Persisted: later git commands in the submodule reach it the same way.
    server = tree.super.http_url.rsplit("/", 1)[0] + "/"
    assert git(ours / "vendor/b", "config", f"url.{server}.insteadOf") == "git@127.0.0.1:"
    git(ours / "vendor/b", "fetch", "-q", "origin")
    again = checkout(tree.super.http_url, ours, "--submodules", "recursive", "--clean")
    assert {row["path"]: row["workspace"] for row in again["submodules"]}["vendor/b"] == "reused"
    assert git(ours / "vendor/b", "config", "remote.origin.url") == f"git@127.0.0.1:{tree.b.name}"


def test_a_second_checkout_updates_submodules_in_place(tree, tmp_path):
    ours = tmp_path / "ours"
    checkout(tree.super.http_url, ours, "--submodules", "recursive")
    moved = move_submodule(tree, tmp_path / "move")

    result = checkout(tree.super.http_url, ours, "--submodules", "recursive", "--clean")

    assert result["workspace"] == "reused"
    rows = _rows(result)
    assert {path: row["workspace"] for path, row in rows.items()} == dict.fromkeys(rows, "reused")
    assert rows["libs/a"]["commit"] == moved == git(ours / "libs/a", "rev-parse", "HEAD")
    theirs = clone_recursive(tree.super.http_url, tmp_path / "theirs")
    assert worktree_files(ours) == worktree_files(theirs)
    assert submodule_status(ours, "--recursive") == submodule_status(theirs, "--recursive")
    for path in ("", "libs/a", "vendor/b", "vendor/b/nested"):
        assert repo_snapshot(ours / path) == repo_snapshot(theirs / path), path
        assert git_dir_of(ours, path) == git_dir_of(theirs, path), path


def test_sparse_superproject_still_gets_its_submodules_as_git_does(tree, tmp_path):
    ours = tmp_path / "ours"

    checkout(tree.super.http_url, ours, "--submodules", "true", "--sparse-checkout", "libs")

    theirs = sparse_recursive_reference(tree.super.http_url, tmp_path / "theirs", "libs")
    assert worktree_files(ours) == worktree_files(theirs)
    assert "vendor/b/b.txt" in worktree_files(ours)  # outside the sparse set, populated as git populates it
    assert submodule_status(ours) == submodule_status(theirs)


@pytest.mark.parametrize("url,protocol", [("ext::sh -c touch% pwned", "ext"), ("/srv/sub.git", "file")])
def test_a_submodule_url_git_refuses_is_refused(tmp_path, git_serve_root, git_daemon, git_http, url, protocol):
    tree = make_tree(tmp_path / "build", git_serve_root, git_daemon, git_http, b_url=url.replace("{", "{{"))

    out = run_cli("checkout", tree.super.http_url, "--path", tmp_path / "ours", "--submodules", "true",
                  cwd=tmp_path, expect=2)

    assert f"protocol.{protocol}.allow" in out.stderr and "vendor/b" in out.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "ours").exists()  # a failed checkout leaves nothing behind


def test_submodules_persisted_credentials_are_listed_for_the_post_step(tree, tmp_path):
    runner_temp = _fresh(tmp_path / "runner-temp")
    ours = tmp_path / "ours"
    out = run_cli("checkout", tree.super.http_url, "--path", ours, "--json", "--submodules", "recursive",
                  "--persist-credentials", env={"MIRRORCI_TOKEN": TOKEN, "RUNNER_TEMP": str(runner_temp)})
    listed = out.json["cleanup_files"]
    persisted = [row["credentials_file"] for row in out.json["submodules"] if row["credentials_file"]]
    assert persisted and set(persisted) <= set(listed)
    assert all(path.startswith(str(runner_temp)) for path in listed)
    included = git(ours / "libs/a", "config", "--get-all", "include.path").splitlines()
    assert set(included) & set(listed)  # the file the submodule's config includes is one the post step deletes
