"""The container image, built from the Dockerfile and run as a GitHub runner runs a container action.

Build: buildah (chroot isolation) on a debootstrap base imported under the FROM
line's exact name; run: podman with the host network, so the actions inside
reach the test servers on 127.0.0.1. See tests/support/container.py.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.container import ROOT, Engine, base_image, default_state_dir, make_context, missing_requirements
from tests.support.e2e import assert_same_as_git_clone
from tests.support.github import parse_github_output
from tests.support.repos import fsck_ok, git

pytestmark = pytest.mark.container

RUNNER_UID = 1001  # the runner user owns the workspace; the action runs as root
TOKEN = "ghs_" + uuid.uuid4().hex
TAG = "localhost/mirrorci-action-test:latest"


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[Engine, str, Path]]:
    """The image, and the build context it came from (kept for rebuilds until the module ends)."""
    reason = missing_requirements()
    if reason:
        pytest.skip(f"container test skipped: {reason}")
    engine = Engine(default_state_dir())
    started = time.monotonic()
    context = engine.state / f"context-{uuid.uuid4().hex[:8]}"
    try:
        with engine.locked():
            base_seconds = engine.ensure_base(base_image(ROOT / "Dockerfile"))
            make_context(context)
            engine.build(context, TAG)
            engine.run("podman", "image", "prune", "-f", check=False)  # earlier builds' images; cached layers stay
        print(f"\nimage built in {time.monotonic() - started:.0f}s (base image: {base_seconds:.0f}s)")
        yield engine, TAG, context
    finally:
        subprocess.run(["rm", "-rf", str(context)], check=False)


@pytest.fixture(scope="module")
def image(built) -> tuple[Engine, str]:
    engine, tag, _ = built
    return engine, tag


class Runner:
    """What a GitHub runner gives a container action: mounts, file commands, INPUT_* with hyphens."""

    def __init__(self, engine: Engine, tag: str, tmp: Path) -> None:
        self.engine, self.tag, self.tmp = engine, tag, tmp
        self.home = tmp / "_github_home"
        self.home.mkdir()

    def run(self, command: str, workspace: Path, inputs: dict[str, str], env: dict[str, str] | None = None,
            mounts: tuple[Path, ...] = ()) -> tuple[subprocess.CompletedProcess[str], dict[str, str], str]:
        files = self.tmp / f"_runner_file_commands-{uuid.uuid4().hex[:6]}"
        files.mkdir()
        (files / "set_output").touch()
        (files / "step_summary").touch()
        argv = [
            "podman", "run", "--rm", "--workdir", "/github/workspace",
            "-v", f"{workspace}:/github/workspace", "-v", f"{files}:/github/file_commands",
            "-v", f"{self.home}:/github/home",
            "-e", "HOME=/github/home", "-e", "GITHUB_ACTIONS=true", "-e", "CI=true",
            "-e", "GITHUB_WORKSPACE=/github/workspace",
            "-e", "GITHUB_OUTPUT=/github/file_commands/set_output",
            "-e", "GITHUB_STEP_SUMMARY=/github/file_commands/step_summary",
            "-e", "NO_PROXY=127.0.0.1,localhost",
        ]
        for path in mounts:
            argv += ["-v", f"{path}:{path}"]
        for key, value in (env or {}).items():
            argv += ["-e", f"{key}={value}"]
        for name, value in inputs.items():
            argv += ["-e", f"INPUT_{name.upper()}={value}"]
        proc = self.engine.run(*argv, self.tag, command, check=False, timeout=300)
        outputs = parse_github_output((files / "set_output").read_text())
        return proc, outputs, (files / "step_summary").read_text()


def give_to_runner(path: Path) -> None:
    for root, dirs, names in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + names)]:
            os.lchown(name, RUNNER_UID, RUNNER_UID)


def test_publish_then_checkout_in_the_container(image, served_origin, static_server, tmp_path, monkeypatch):
    engine, tag = image
    runner = Runner(engine, tag, tmp_path)
    # git on the host, as root, looks into workspaces the runner user owns
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "safe.directory")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "*")

    # The release job: a default actions/checkout workspace (depth 1, one branch), then the publish action.
    ws = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", "--depth", "1", "--single-branch", "--no-tags", served_origin.http_url, str(ws))
    give_to_runner(ws)
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    store = static_server.root / prefix
    store.mkdir()
    proc, out, summary = runner.run("publish", ws, {
        "store": str(store), "public-url": f"{static_server.url}/{prefix}", "token": TOKEN,
        "path": ".", "remote": "origin", "push": "true", "source": "auto", "token-user": "x-access-token",
    }, mounts=(store,))

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == f"::add-mask::{TOKEN}"
    assert TOKEN not in proc.stdout + "\n".join(proc.stderr.splitlines()[1:]) + summary
    all_refs = git(served_origin.path, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags").split()
    assert len(all_refs) > 1
    assert out["bundle-url"].startswith(f"{static_server.url}/{prefix}/") and len(out["bundle-sha256"]) == 64
    assert out["refs"].endswith(" refs/mirrors/bundle/http") and out["info-hash"] == ""
    assert "### mirrorci publish" in summary
    assert git(ws, "rev-parse", "--is-shallow-repository") == "true"

    # The build job: the checkout action into a used workspace, on a push to main.
    ws2 = tmp_path / "build-workspace"
    ws2.mkdir()
    (ws2 / "stale.txt").write_text("left by an earlier job")
    give_to_runner(ws2)
    server, name = served_origin.http_url.rsplit("/", 1)
    main_sha = git(served_origin.path, "rev-parse", "main")
    proc, out, summary = runner.run("checkout", ws2, {
        "repository": name, "ref": "", "token": TOKEN, "path": "", "clean": "true", "persist-credentials": "false",
        "fetch-tags": "true", "fetch-depth": "1", "set-safe-directory": "true", "verify": "auto", "timeout": "60",
    }, env={"GITHUB_SERVER_URL": server, "GITHUB_REPOSITORY": name, "GITHUB_REF": "refs/heads/main",
            "GITHUB_SHA": main_sha})

    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + "\n".join(proc.stderr.splitlines()[1:]) + summary
    assert out["commit"] == main_sha and out["ref"] == "refs/heads/main"
    assert out["method"] == "http" and out["origin-fetched"] == "false" and out["bytes-from-origin"] == "0"
    assert int(out["bytes-from-mirror"]) > 0
    assert "### mirrorci checkout" in summary
    assert not (ws2 / "stale.txt").exists()
    owners = {p.lstat().st_uid for p in [ws2, *ws2.rglob("*")]}
    assert owners == {RUNNER_UID}  # later steps on the host, as the runner user, can change everything
    assert git(ws2, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert TOKEN not in (ws2 / ".git/config").read_text()
    assert "\tdirectory = /github/workspace\n" in (runner.home / ".gitconfig").read_text()
    assert fsck_ok(ws2)
    assert_same_as_git_clone(ws2, served_origin.http_url, tmp_path)


def test_bad_input_in_the_container_is_an_error_annotation(image, tmp_path):
    engine, tag = image
    ws = tmp_path / "ws"
    ws.mkdir()
    proc, out, _ = Runner(engine, tag, tmp_path).run("checkout", ws, {
        "repository": "http://127.0.0.1:9/x.git", "verify": "sometimes"})
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("::error::")]
    assert any("input verify" in line for line in errors), proc.stderr
    assert out == {}


# What a GitLab runner's Docker executor gives the image as its command (the image's
# entry point stays): a shell detection script; the job's script then comes on stdin.
GITLAB_SHELL_DETECTION = """if [ -x /usr/local/bin/bash ]; then
\texec /usr/local/bin/bash
elif [ -x /usr/bin/bash ]; then
\texec /usr/bin/bash
elif [ -x /bin/bash ]; then
\texec /bin/bash
elif [ -x /bin/sh ]; then
\texec /bin/sh
else
\techo shell not found
\texit 1
fi
"""


def test_the_image_runs_other_commands_without_an_entrypoint_override(image):
    engine, tag = image

    def run(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        opts = ["-i"] if input is not None else []
        return engine.run("podman", "run", "--rm", *opts, tag, *argv, check=False, timeout=120, input=input)

    shell = run("sh", "-c", "echo from sh; exit 3")
    assert (shell.returncode, shell.stdout) == (3, "from sh\n")
    assert run("git", "--version").stdout.startswith("git version ")
    assert run("bash", "-lc", "mirrorci --version").stdout.startswith("mirrorci ")
    assert run("--version").stdout.startswith("mirrorci ")
    assert "usage: mirrorci" in run().stdout
    missing = run("no-such-command")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    job = run("sh", "-c", GITLAB_SHELL_DETECTION, input='set -eo pipefail\necho "shell $BASH_VERSION"\n'
              "mirrorci --version\ncommand -v mirrorci-ci\n")
    assert job.returncode == 0, job.stderr
    lines = job.stdout.splitlines()
    assert lines[0].startswith("shell 5") and lines[1].startswith("mirrorci ")
    assert lines[2] == "/usr/local/bin/mirrorci-ci"


def test_a_source_change_rebuilds_only_the_source_layers(built):
    """requirements.lock is installed before the source is copied: its layer is reused."""
    engine, tag, context = built
    changed = context.parent / f"{context.name}-changed"
    subprocess.run(["cp", "-a", str(context), str(changed)], check=True)
    other = "localhost/mirrorci-action-test:source-change"
    try:
        with (changed / "mirrorci" / "__init__.py").open("a") as fh:
            fh.write(f"# {uuid.uuid4().hex}\n")
        with engine.locked():
            engine.build(changed, other)

        def layers(name: str) -> list[str]:
            return engine.run("podman", "image", "inspect", "--format", "{{range .RootFS.Layers}}{{println .}}{{end}}",
                              name).stdout.split()

        before, after = layers(tag), layers(other)
        shared = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), len(before))
        # Only the last two differ: COPY mirrorci/ and the package's --no-deps install.
        assert len(before) == len(after) and shared == len(before) - 2, (before, after)
    finally:
        engine.run("podman", "rmi", "-f", other, check=False)
        subprocess.run(["rm", "-rf", str(changed)], check=False)


def test_gitlab_checkout_job_in_the_image(image, served_origin, static_server, tmp_path):
    """The checkout component's default form on the Docker executor.

    GIT_STRATEGY none, and mirrorci from the job's image.
    """
    from tests.support.e2e import publish_to_static
    from tests.support.gitlab import JobRun, render

    engine, tag = image
    publish_to_static(served_origin, static_server, tmp_path)
    build = tmp_path / "builds" / "project"
    build.mkdir(parents=True)
    server, name = served_origin.http_url.rsplit("/", 1)
    (job,) = render(ROOT / "templates" / "checkout.yml", {"image": tag}, {"version": "1.2.3"}).values()
    run = JobRun(job, {
        "CI": "true", "GITLAB_CI": "true", "CI_JOB_ID": "7", "CI_PROJECT_DIR": str(build), "CI_SERVER_URL": server,
        "CI_PROJECT_PATH": name.removesuffix(".git"), "CI_JOB_TOKEN": TOKEN, "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_SHA": git(served_origin.path, "rev-parse", "main"), "NO_PROXY": "127.0.0.1,localhost",
    })
    assert run.image == tag
    argv = ["podman", "run", "-i", "--rm", "-v", f"{build}:{build}", "--workdir", str(build)]
    for key, value in run.env.items():
        argv += ["-e", f"{key}={value}"]
    script = "set -eo pipefail\n" + run.script() + 'test "$(git rev-parse HEAD)" = "$CI_COMMIT_SHA"\n'

    proc = engine.run(*argv, tag, "sh", "-c", GITLAB_SHELL_DETECTION, check=False, timeout=300, input=script)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = dict(line.split("=", 1) for line in (build / "mirrorci-checkout.env").read_text().splitlines())
    assert report["MIRRORCI_METHOD"] == "http" and report["MIRRORCI_BYTES_FROM_ORIGIN"] == "0"
    assert TOKEN not in proc.stdout + proc.stderr
    monkey_env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    os.environ.update(monkey_env)
    try:
        assert_same_as_git_clone(build, served_origin.http_url, tmp_path)
    finally:
        for key in monkey_env:
            os.environ.pop(key, None)
