"""Tokens for origin stay with origin: never sent to mirror hosts, never printed."""

from __future__ import annotations

import json
import uuid

from tests.support.cli import run_cli
from tests.support.e2e import publish_to_static
from tests.support.repos import git

SECRET = "s3cr3t-" + uuid.uuid4().hex


def origin_auth_env() -> dict[str, str]:
    """What actions/checkout does: an Authorization header configured for origin's URL."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Bearer {SECRET}",
    }


def test_origin_token_is_not_sent_to_the_bundle_mirror_or_printed(served_origin, static_server, tmp_path, git_daemon,
                                                                  git_serve_root):
    mirror = f"mirror-{uuid.uuid4().hex[:6]}.git"
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(git_serve_root / mirror))
    publish_to_static(served_origin, static_server, tmp_path)
    url = served_origin.http_url.replace("http://", f"http://user:{SECRET}@")

    out = run_cli("checkout", url, "--path", tmp_path / "co", "--json", env=origin_auth_env())

    result = json.loads(out.stdout)
    assert result["method"] == "http"
    assert static_server.headers_seen, "the mirror was not contacted"
    for headers in static_server.headers_seen:
        assert not any(k.lower() in ("authorization", "cookie") for k in headers), headers
        assert SECRET not in json.dumps(headers)
    assert SECRET not in out.stderr and SECRET not in out.stdout


def test_origin_token_is_not_offered_to_a_git_mirror(served_origin, static_server, git_http, git_serve_root, tmp_path):
    mirror = f"mirror-{uuid.uuid4().hex[:6]}.git"
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(git_serve_root / mirror))
    publish_to_static(served_origin, static_server, tmp_path, "--http-mirror", git_http.url_for(mirror))
    git_http.reset()

    # The header is scoped to origin's URL only by git's own rules; we also clear it for mirrors.
    result = run_cli("checkout", served_origin.git_url, "--path", tmp_path / "co", "--prefer", "git", "--json",
                     env=origin_auth_env()).json
    assert result["method"] == "git"
    mirror_requests = [p for _, p in git_http.requests if mirror in p]
    assert mirror_requests
    assert all(SECRET not in json.dumps(h) for h in git_http.headers_seen)
