"""What a CI job gives us: shallow single-branch workspaces, tokens, pull-request refs, dirty paths."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout, push_pull_request_ref
from tests.support.repos import fsck_ok, git

TOKEN = "tok-" + uuid.uuid4().hex


def test_publish_from_a_shallow_single_branch_workspace_has_full_history(served_origin, static_server, tmp_path):
    work = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", "--depth", "1", "--single-branch", "--no-tags", served_origin.http_url, str(work))
    assert git(work, "rev-parse", "--is-shallow-repository") == "true"
    prefix = f"store-{uuid.uuid4().hex[:6]}"
    published = run_cli("publish", "--repo", work, "--store", static_server.root / prefix,
                        "--public-url", f"{static_server.url}/{prefix}", "--json").json
    all_refs = git(served_origin.path, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags").split()
    assert published["bundle"]["refs"] == len(all_refs) + 1  # + HEAD

    result = checkout(served_origin.git_url, tmp_path / "co")
    assert result["method"] == "http" and result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)
    assert git(work, "rev-parse", "--is-shallow-repository") == "true"  # the workspace is left as it was


def test_token_goes_to_origin_only_and_is_never_printed(served_origin, static_server, git_http, tmp_path):
    work = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", "--depth", "1", served_origin.http_url, str(work))
    prefix = f"store-{uuid.uuid4().hex[:6]}"
    git_http.reset()
    env = {"MIRRORCI_TOKEN": TOKEN}
    out = run_cli("publish", "--repo", work, "--store", static_server.root / prefix,
                  "--public-url", f"{static_server.url}/{prefix}", "--json", env=env)
    expected = "basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    origin_auth = [h.get("Authorization") for h in git_http.headers_seen]
    assert origin_auth and all(a == expected for a in origin_auth)  # every request to origin, push included
    assert any(m == "POST" and "git-receive-pack" in p for m, p in git_http.requests)
    assert TOKEN not in out.stdout + out.stderr

    static_server.reset()
    out = run_cli("checkout", served_origin.http_url, "--path", tmp_path / "co", "--json", env=env)
    assert out.json["method"] == "http"
    assert all("Authorization" not in h for h in static_server.headers_seen) and static_server.headers_seen
    assert TOKEN not in out.stdout + out.stderr
    assert TOKEN not in (tmp_path / "co/.git/config").read_text()  # not persisted unless asked

    run_cli("checkout", served_origin.http_url, "--path", tmp_path / "co2", "--persist-credentials", env=env)
    # Persisted in a 0600 file the clone's config includes, never in .git/config itself.
    assert TOKEN not in (tmp_path / "co2/.git/config").read_text()
    included = subprocess.run(["git", "-C", str(tmp_path / "co2"), "config", "--get-all", "include.path"],
                              check=True, capture_output=True, text=True).stdout.split()
    assert len(included) == 1 and expected in Path(included[0]).read_text()
    assert Path(included[0]).stat().st_mode & 0o077 == 0


def test_pull_request_ref_is_checked_out_detached(served_origin, static_server, tmp_path):
    work, pr_commit = push_pull_request_ref(served_origin, tmp_path)
    prefix = f"store-{uuid.uuid4().hex[:6]}"
    run_cli("publish", "--repo", work, "--store", static_server.root / prefix,
            "--public-url", f"{static_server.url}/{prefix}")

    result = checkout(served_origin.git_url, tmp_path / "co", "--ref", "refs/pull/7/merge")

    assert result["method"] == "http" and result["detached"] is True
    assert result["head"] == pr_commit
    assert (tmp_path / "co" / "pr.txt").exists()
    assert fsck_ok(tmp_path / "co")


def test_clean_empties_a_used_workspace(served_origin, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "stale.txt").write_text("left by an earlier job")
    result = checkout(served_origin.git_url, ws, "--clean")
    assert not (ws / "stale.txt").exists()
    assert result["head"] == git(served_origin.path, "rev-parse", "HEAD")
