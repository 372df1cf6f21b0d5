"""Both actions under a real runner: nektos/act runs a release workflow, then a build job.

The publish job runs `uses: org/mirror-action@v1` (the container action: act builds the
Dockerfile through podman's Docker API); the build job runs
`uses: org/mirror-action/checkout@v1` (the JavaScript action: node starts mirrorci with
the job container's python3, no image). Both come from a copy of this repository
standing in for the release tag. The origin is served over smart HTTP and the store
over plain HTTP, both on 127.0.0.1, which act's host networking reaches.

Needs root, podman, buildah, debootstrap, runc and act (tests/support/act.py); the
runner image is built once (about 30 s plus the base image) and kept.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.act import (
    ACTION_REF,
    Act,
    action_release,
    missing_requirements,
    podman_service,
    runner_image,
    wheelhouse,
)
from tests.support.container import Engine, default_state_dir
from tests.support.e2e import assert_same_as_git_clone
from tests.support.repos import git
from tests.support.static_server import StaticServer

pytestmark = [pytest.mark.container, pytest.mark.slow]

TOKEN = "ghs_" + uuid.uuid4().hex

WORKFLOW = """\
name: mirror
on: push
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - uses: {action}
        id: publish
        with:
          store: store
          public-url: {public_url}
          token: ${{{{ secrets.MIRROR_TOKEN }}}}
      - run: echo '${{{{ toJSON(steps.publish.outputs) }}}}' > publish-outputs.json
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: {checkout}
        id: checkout
        with:
          repository: {origin}
          path: co
          fetch-tags: true
          token: ${{{{ secrets.MIRROR_TOKEN }}}}
      - run: |
          echo '${{{{ toJSON(steps.checkout.outputs) }}}}' > checkout-outputs.json
          git -C co config --get-all include.path > included.txt
          test -s "$(cat included.txt)"
          git -C co fetch --quiet origin
"""


@pytest.fixture(scope="module")
def act_env() -> Iterator[tuple[Engine, str, Path]]:
    reason = missing_requirements()
    if reason:
        pytest.skip(f"act test skipped: {reason}")
    engine = Engine(default_state_dir())
    image, seconds = runner_image(engine)
    print(f"\nrunner image {image} ready in {seconds:.0f}s")
    yield engine, image, wheelhouse(engine)
    with engine.locked():  # the images act's earlier builds of the publish action left untagged; cached layers stay
        engine.run("podman", "image", "prune", "-f", check=False)


def test_publish_then_checkout_under_act(act_env, served_origin, git_http, tmp_path):
    engine, image, wheels = act_env
    started = time.monotonic()
    ws = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", served_origin.http_url, str(ws))
    release = action_release(tmp_path / "release", wheels)
    (ws / ".github" / "workflows").mkdir(parents=True)
    workflow = ws / ".github" / "workflows" / "mirror.yml"

    with StaticServer(ws) as store, podman_service(engine, tmp_path) as docker_host:
        workflow.write_text(WORKFLOW.format(action=ACTION_REF, checkout=ACTION_REF.replace("@", "/checkout@"),
                                            public_url=f"{store.url}/store", origin=served_origin.http_url))
        act = Act(docker_host, image, tmp_path / "act-home", {ACTION_REF: release})

        publish = act.run(ws, workflow, "publish", secrets={"MIRROR_TOKEN": TOKEN}, timeout=600)
        assert publish.code == 0, publish.output[-6000:]
        published = json.loads((ws / "publish-outputs.json").read_text())
        assert published["bundle-url"].startswith(f"{store.url}/store/")
        assert git(served_origin.path, "rev-parse", "refs/mirrors/bundle/http")

        store.reset()
        git_http.reset()
        build = act.run(ws, workflow, "build", secrets={"MIRROR_TOKEN": TOKEN}, timeout=300)

    assert build.code == 0, build.output[-6000:]
    outputs = json.loads((ws / "checkout-outputs.json").read_text())
    assert outputs["method"] == "http" and outputs["bytes-from-origin"] == "0", build.output[-4000:]
    assert outputs["origin-fetched"] == "false"
    assert outputs["commit"] == git(served_origin.path, "rev-parse", "HEAD")
    assert any(path.endswith(".bundle") for _, path, _ in store.requests)
    assert_same_as_git_clone(ws / "co", served_origin.http_url, tmp_path)
    # The token reached origin only, was never printed, and the post step took the persisted copy away.
    assert TOKEN not in build.output and TOKEN not in publish.output
    assert (ws / "included.txt").read_text().strip().startswith("/tmp/mirrorci-credentials-")
    assert git(ws / "co", "config", "--get-all", "include.path", check=False) == ""
    assert "removed the persisted credentials (1 file)" in build.output
    checkout_step = build.step(f"Main {ACTION_REF.replace('@', '/checkout@')}")
    print(f"\nunder act: publish job {publish.seconds:.1f}s, build job {build.seconds:.1f}s, "
          f"checkout step {checkout_step:.2f}s, whole test {time.monotonic() - started:.0f}s")
