"""Origin's credentials never reach a mirror, even one on origin's own scheme://host:port.

Origin here is smart HTTP that answers 401 without its token; a public git mirror
lives on the same server (another repository), and the bundle mirror on the
attacker's host. Every request either of them receives is checked.
"""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from mirrorci.mirrorlist import REF_FETCH_HTTP
from tests.attacks.helpers import assert_equals_git_clone, publish_bundle, run_checkout, set_mirror_blob
from tests.support.repos import git


def _secrets(server) -> list[str]:  # type: ignore[no-untyped-def]
    return [server.token, server.authorization.split(" ", 1)[1]]


@pytest.fixture
def private_origin(_origin_template, token_http, tmp_path):  # type: ignore[no-untyped-def]
    """A copy of the sample origin that answers only with the token, plus a public mirror of it on the same host."""
    tag = uuid.uuid4().hex[:8]
    origin, mirror = f"private-{tag}.git", f"public-mirror-{tag}.git"
    shutil.copytree(_origin_template, token_http.root / origin, symlinks=True)
    git(tmp_path, "clone", "-q", "--mirror", str(token_http.root / origin), str(token_http.root / mirror))
    token_http.protected.add(origin)
    return token_http.root / origin, token_http.url_for(origin), token_http.url_for(mirror), mirror


@pytest.mark.parametrize("how", ["persist-credentials", "url-scoped-config"])
@pytest.mark.parametrize("method", ["git", "http"])
def test_origin_token_never_reaches_a_mirror(private_origin, token_http, hostile, legit, tmp_path, how, method):
    origin_path, origin_url, mirror_url, mirror = private_origin
    set_mirror_blob(origin_path, REF_FETCH_HTTP, mirror_url + "\n")
    publish_bundle(origin_path, hostile, legit.bundle, legit.idx)
    # The bundle and idx of the sample origin are the same objects: `legit` came from the same template.
    prefix = origin_url.split("/private-", 1)[0] + "/"
    header = f"Authorization: {token_http.authorization}"
    auth_env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{prefix}.extraHeader", "GIT_CONFIG_VALUE_0": header}
    if how == "persist-credentials":
        env, extra = {"MIRRORCI_TOKEN": token_http.token}, ("--persist-credentials",)
    else:  # what actions/checkout leaves: an extraheader scoped to origin's URL, from the environment
        env, extra = auth_env, ()
    anonymous = git(tmp_path, "ls-remote", origin_url, check=False)
    assert not anonymous, "origin must refuse requests without the token"
    token_http.reset()

    outcome = run_checkout(origin_url, tmp_path / "co", "--prefer", method, *extra, env=env)

    assert outcome.code == 0, outcome.stderr[-3000:]
    result = outcome.json
    for secret in _secrets(token_http):
        assert secret not in outcome.stdout and secret not in outcome.stderr, "the token was printed"
    seen = list(zip(token_http.requests, token_http.headers_seen, strict=True))
    origin_requests = [h for (_, p), h in seen if p.startswith(f"/{origin_path.name}/")]
    mirror_requests = [h for (_, p), h in seen if p.startswith(f"/{mirror}/")]
    assert origin_requests and all("Authorization" in h for h in origin_requests)
    for headers in mirror_requests + [r.headers for r in hostile.requests]:
        assert not {k.lower() for k in headers} & {"authorization", "cookie", "proxy-authorization"}, headers
        for secret in _secrets(token_http):
            assert secret not in json.dumps(headers)
    assert result["method"] == method, result["fallbacks"]
    assert mirror_requests if method == "git" else hostile.requests, "the mirror was never contacted"
    assert_equals_git_clone(origin_url, tmp_path / "co", env=auth_env)
