"""End to end: the actions/checkout inputs the checkout core implements, against real servers.

Workspace reuse (`--clean` on a clone of the same origin), `--commit`, `--fetch-depth`
on the origin fallback, `--no-tags`, `--filter`, and sparse checkout (cone and not).
"""

from __future__ import annotations

from pathlib import Path

from mirrorci.worktree import cone_pathspecs
from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout, publish_to_static
from tests.support.repos import advance_origin, fsck_ok, git, repo_snapshot


def _files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(path).parts}


def test_clean_updates_a_clone_of_the_same_origin_in_place(served_origin, static_server, tmp_path):
    first = publish_to_static(served_origin, static_server, tmp_path)
    ours = tmp_path / "co"
    checkout(served_origin.http_url, ours)
    kept = (ours / "docs" / "guide.md").stat().st_ino
    (ours / "README.md").write_text("edited by a job\n")  # a change the next job must not see
    (ours / "build-output.o").write_text("junk\n")  # untracked files go, as with clean -ffdx
    (ours / ".git" / "index.lock").write_text("")  # a killed git left it behind
    git(ours, "branch", "leftover")
    advance_origin(served_origin.path, tmp_path / "advance")
    (tmp_path / "again").mkdir()
    second = publish_to_static(served_origin, static_server, tmp_path / "again", prefix=first["prefix"])
    assert second["published"] == "increment"
    static_server.requests.clear()

    result = checkout(served_origin.http_url, ours, "--clean")

    assert result["workspace"] == "reused"
    assert result["method"] == "http", result["fallbacks"]
    assert result["bytes_from_mirror"] == second["bundle"]["size"]  # only the increment
    assert result["final_fetch"] is False and result["bytes_from_origin"] == 0
    base = f"{first['prefix']}/{first['bundle']['key']}"
    assert not any(path == base for _, path, _ in static_server.requests)
    assert result["verified"]["scope"] == "relied-on"
    assert_same_as_git_clone(ours, served_origin.http_url, tmp_path)
    assert not (ours / "build-output.o").exists()
    assert (ours / "docs" / "guide.md").stat().st_ino == kept  # a file that did not change is not rewritten
    assert (ours / "README.md").read_text() != "edited by a job\n"
    assert "refs/heads/leftover" not in git(ours, "for-each-ref", "--format=%(refname)")


def test_a_current_reused_clone_needs_no_download(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    ours = tmp_path / "co"
    checkout(served_origin.git_url, ours)
    static_server.requests.clear()

    result = checkout(served_origin.git_url, ours, "--clean", "--ref", "develop")

    assert result["workspace"] == "reused"
    assert result["method"] == "workspace"
    assert result["bytes_from_mirror"] == 0 and result["final_fetch"] is False
    assert not any(path.endswith((".bundle", ".pack", ".idx")) for _, path, _ in static_server.requests)
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", "--branch", "develop", served_origin.git_url, str(theirs))
    assert repo_snapshot(ours) == repo_snapshot(theirs)


def test_clean_replaces_a_clone_of_another_origin_or_a_broken_one(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    git(other, "remote", "add", "origin", "https://example.invalid/another.git")
    (other / "stray.txt").write_text("x\n")
    result = checkout(served_origin.git_url, other, "--clean")
    assert result["workspace"].startswith("replaced (its origin is https://example.invalid/another")
    assert_same_as_git_clone(other, served_origin.git_url, tmp_path)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / ".git").mkdir()
    (broken / "file").write_text("x\n")
    result = checkout(served_origin.git_url, broken, "--clean")
    assert result["workspace"] == "replaced (its .git is not a usable repository)"
    assert_same_as_git_clone(broken, served_origin.git_url, tmp_path)


def test_fetch_depth_applies_only_when_origin_serves_the_checkout(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    shallow = checkout(served_origin.git_url, tmp_path / "shallow", "--no-mirrors", "--fetch-depth", "1")
    assert shallow["method"] == "origin"
    assert git(tmp_path / "shallow", "rev-parse", "--is-shallow-repository") == "true"
    assert git(tmp_path / "shallow", "rev-list", "--count", "HEAD") == "1"
    assert git(tmp_path / "shallow", "for-each-ref", "--format=%(refname)", "refs/tags") == ""
    assert git(tmp_path / "shallow", "rev-parse", "HEAD") == git(served_origin.path, "rev-parse", "main")
    assert git(tmp_path / "shallow", "status", "--porcelain") == ""

    full = checkout(served_origin.git_url, tmp_path / "full", "--fetch-depth", "1")
    assert full["method"] == "http"
    assert git(tmp_path / "full", "rev-parse", "--is-shallow-repository") == "false"
    assert_same_as_git_clone(tmp_path / "full", served_origin.git_url, tmp_path)


def test_commit_pins_the_branch_to_the_event_commit(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    event = git(served_origin.path, "rev-parse", "main~1")
    for extra in ((), ("--no-mirrors", "--fetch-depth", "2")):
        ours = tmp_path / f"co{len(extra)}"
        result = checkout(served_origin.http_url, ours, "--ref", "refs/heads/main", "--commit", event, *extra)
        assert result["head"] == event and result["detached"] is False
        assert git(ours, "symbolic-ref", "HEAD") == "refs/heads/main"
        assert git(ours, "rev-parse", "HEAD") == event
        assert git(ours, "status", "--porcelain") == ""
        assert fsck_ok(ours)


def test_commit_must_be_an_object_id(served_origin, tmp_path):
    proc = run_cli("checkout", served_origin.git_url, "--path", tmp_path / "co", "--commit", "main", expect=2)
    assert "--commit 'main': give a full commit id" in proc.stderr


def test_no_tags_matches_git_clone_no_tags(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    advance_origin(served_origin.path, tmp_path / "advance")  # a final fetch from origin too
    ours = tmp_path / "co"
    result = checkout(served_origin.http_url, ours, "--no-tags")
    assert result["method"] == "http"
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", "--no-tags", served_origin.http_url, str(theirs))
    assert repo_snapshot(ours) == repo_snapshot(theirs)
    assert git(ours, "config", "remote.origin.tagOpt") == "--no-tags"

    tagged = checkout(served_origin.http_url, tmp_path / "tagged", "--no-tags", "--ref", "v2.0")
    assert git(tmp_path / "tagged", "for-each-ref", "--format=%(refname)", "refs/tags") == "refs/tags/v2.0"
    assert tagged["detached"] is True


def test_filter_makes_the_origin_fallback_a_partial_clone(served_origin, tmp_path):
    ours = tmp_path / "co"
    result = checkout(served_origin.http_url, ours, "--no-mirrors", "--filter", "blob:none")
    assert result["method"] == "origin"
    assert git(ours, "config", "remote.origin.partialclonefilter") == "blob:none"
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", served_origin.http_url, str(theirs))
    assert _files(ours) == _files(theirs)
    assert git(ours, "status", "--porcelain") == ""
    missing = git(ours, "rev-list", "--objects", "--missing=print", "--all")
    assert any(line.startswith("?") for line in missing.splitlines())  # old blobs stayed on origin


def test_sparse_checkout_cone_and_patterns(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    cone = tmp_path / "cone"
    result = checkout(served_origin.http_url, cone, "--ref", "develop", "--sparse-checkout", "src")
    assert result["method"] == "http"
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", "--branch", "develop", served_origin.http_url, str(theirs))
    everything = _files(theirs)
    top = {f for f in everything if "/" not in f}
    assert _files(cone) == top | {f for f in everything if f.startswith("src/")}
    assert _files(cone) != everything
    assert git(cone, "status", "--porcelain") == ""
    assert git(cone, "config", "core.sparseCheckoutCone") == "true"
    # Verification hashes exactly the blobs the sparse checkout wrote (and the trees above them).
    full = checkout(served_origin.http_url, tmp_path / "full", "--ref", "develop")
    assert result["verified"]["objects"] < full["verified"]["objects"]
    listed = git(cone, "rev-list", "--objects", "--no-walk", "HEAD", "--", *cone_pathspecs(["src"]))
    named = {line.split(" ", 1)[1] for line in listed.splitlines() if " " in line and line.split(" ", 1)[1]}
    assert _files(cone) <= named
    assert {n for n in named - _files(cone) if "/" in n} == set()  # beyond the files: only top-level trees

    pattern = tmp_path / "pattern"
    checkout(served_origin.http_url, pattern, "--ref", "develop", "--sparse-checkout", "*.md",
             "--no-sparse-checkout-cone")
    assert _files(pattern) == {f for f in everything if f.endswith(".md")}
    assert git(pattern, "status", "--porcelain") == ""

    # The same workspace reused without sparse-checkout gets the whole tree back.
    again = checkout(served_origin.http_url, pattern, "--ref", "develop", "--clean")
    assert again["workspace"] == "reused"
    assert _files(pattern) == everything


def test_filter_after_a_mirror_fetches_only_the_rest_partially(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    advance_origin(served_origin.path, tmp_path / "advance")
    ours = tmp_path / "co"
    result = checkout(served_origin.http_url, ours, "--filter", "blob:none")
    assert result["method"] == "http", result["fallbacks"]
    assert result["fallbacks"] == []
    assert result["final_fetch"] is True
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", served_origin.http_url, str(theirs))
    assert _files(ours) == _files(theirs)
    assert git(ours, "rev-parse", "HEAD") == git(theirs, "rev-parse", "HEAD")
    assert git(ours, "status", "--porcelain") == ""


def test_no_progress_keeps_only_the_closing_lines(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    shown = run_cli("checkout", served_origin.http_url, "--path", tmp_path / "shown", env={"CI": "true"})
    quiet = run_cli("checkout", served_origin.http_url, "--path", tmp_path / "quiet", "--no-progress",
                    env={"CI": "true"})

    def quarters(text: str) -> list[str]:
        """The transfer's intermediate lines (the closing one says how long it took instead of an ETA)."""
        return [line for line in text.splitlines() if "%)" in line and "ETA" in line]

    assert quarters(shown.stderr), shown.stderr
    assert quarters(quiet.stderr) == []
    assert "checked out" in quiet.stderr
