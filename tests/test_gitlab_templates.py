"""The GitLab components' jobs, rendered with their inputs and run with sh as a runner runs them.

The checkout job's own script (git-strategy none: the form for Docker and
Kubernetes executors) checks out against a real origin and mirror on 127.0.0.1,
with mirrorci from the job's environment (`mirrorci-ci`) or downloaded as
mirrorci.pyz and run by a python3 without site-packages; the hook form
(git-strategy fetch) fills the build directory before an emulated runner fetch.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.e2e import publish_to_static
from tests.support.gitlab import JobRun, render
from tests.support.repos import fsck_ok, git, repo_snapshot
from tests.support.zipapp import build_zipapp

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = ROOT / "templates" / "checkout.yml"
PUBLISH = ROOT / "templates" / "publish.yml"
VERSION = "1.2.3"
TOKEN = "glcbt-" + uuid.uuid4().hex
DOTENV = "mirrorci-checkout.env"


def job_of(template: Path, inputs: dict, predefined: dict[str, str]) -> JobRun:
    (job,) = render(template, inputs, {"version": VERSION}).values()
    return JobRun(job, predefined)


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """A PATH directory: python3 without site-packages (a job image's bare python3), and git."""
    bin_dir = tmp_path / "job-bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    return bin_dir


def with_mirrorci_ci(bin_dir: Path) -> Path:
    """mirrorci-ci as the image installs it: the entry point, with the package importable."""
    (bin_dir / "mirrorci-ci").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "entrypoint.py"}" "$@"\n')
    (bin_dir / "mirrorci-ci").chmod(0o755)
    return bin_dir


def predefined(served_origin, build_dir: Path, bin_dir: Path, branch: str, **extra: str) -> dict[str, str]:
    """What a GitLab runner puts in a job's environment, for a pipeline on `branch`."""
    server, name = served_origin.http_url.rsplit("/", 1)
    platform = ("INPUT_", "GITHUB_", "CI_", "GITLAB_", "MIRRORCI_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(platform)}
    dirs = base.get("PATH", "").split(os.pathsep)
    path = os.pathsep.join(p for p in dirs if shutil.which("mirrorci-ci", path=p) is None)
    return {
        **base, "PATH": f"{bin_dir}{os.pathsep}{path}",
        "CI": "true", "GITLAB_CI": "true", "CI_JOB_ID": "4242", "CI_PROJECT_DIR": str(build_dir),
        "CI_SERVER_URL": server, "CI_PROJECT_PATH": name.removesuffix(".git"), "CI_JOB_TOKEN": TOKEN,
        "CI_COMMIT_BRANCH": branch, "CI_COMMIT_SHA": git(served_origin.path, "rev-parse", branch),
        "CI_REGISTRY": "registry.gitlab.invalid", "TMPDIR": str(build_dir.parent),
        **extra,
    }


def dotenv(build_dir: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (build_dir / DOTENV).read_text().splitlines())


def assert_like_git_clone_of(build_dir: Path, url: str, branch: str, tmp_path: Path) -> None:
    theirs = tmp_path / f"git-clone-{uuid.uuid4().hex[:6]}"
    git(tmp_path, "clone", "-q", "-b", branch, url, str(theirs))
    assert repo_snapshot(build_dir) == repo_snapshot(theirs)  # includes a clean `git status`
    assert fsck_ok(build_dir)


def test_components_default_to_the_image_of_their_own_version():
    for template in (CHECKOUT, PUBLISH):
        inputs = {"store": "s3://bucket/mirrors"} if template == PUBLISH else {}
        job = job_of(template, inputs, {"CI_REGISTRY": "registry.gitlab.invalid"})
        assert job.image == f"registry.gitlab.invalid/mirrorci/mirror-action:{VERSION}"
        assert isinstance(job.job["image"], str)  # the image's entry point runs the job's shell: no override
        other = job_of(template, {**inputs, "image": "example.invalid/build:3"}, {})
        assert other.image == "example.invalid/build:3"


def test_checkout_in_the_jobs_container_with_the_downloaded_zipapp(served_origin, static_server, tools, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    pyz, digest = build_zipapp(static_server.root / published["prefix"] / "mirrorci.pyz")
    build = tmp_path / "builds" / "project"
    build.mkdir(parents=True)
    job = job_of(CHECKOUT, {
        "zipapp-url": f"{static_server.url}/{published['prefix']}/mirrorci.pyz", "zipapp-sha256": digest,
        "script": ['test "$(git rev-parse HEAD)" = "$CI_COMMIT_SHA"', "echo ran > ../script-ran"],
    }, predefined(served_origin, build, tools, "develop"))
    assert job.env["GIT_STRATEGY"] == "none"  # the runner fetches nothing: the script's first step does

    proc = job.run()

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "builds" / "script-ran").exists()
    values = dotenv(build)
    assert values["MIRRORCI_METHOD"] == "http" and values["MIRRORCI_BYTES_FROM_ORIGIN"] == "0"
    assert values["MIRRORCI_COMMIT"] == job.env["CI_COMMIT_SHA"]
    assert TOKEN not in proc.stdout + proc.stderr
    assert_like_git_clone_of(build, served_origin.http_url, "develop", tmp_path)


def test_a_zipapp_with_another_sha256_does_not_run(served_origin, static_server, tools, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    build_zipapp(static_server.root / published["prefix"] / "mirrorci.pyz")
    build = tmp_path / "project"
    build.mkdir()
    job = job_of(CHECKOUT, {"zipapp-url": f"{static_server.url}/{published['prefix']}/mirrorci.pyz",
                            "zipapp-sha256": "0" * 64}, predefined(served_origin, build, tools, "main"))

    proc = job.run()

    assert proc.returncode != 0 and "not the expected one" in proc.stderr
    assert list(build.iterdir()) == []


def test_checkout_in_a_used_build_directory_moves_to_the_jobs_commit(served_origin, static_server, tools, tmp_path):
    """Docker executors keep build directories between jobs: an earlier job's clone, the branch moved on since."""
    publish_to_static(served_origin, static_server, tmp_path)
    build = tmp_path / "project"
    git(tmp_path, "clone", "-q", served_origin.http_url, str(build))
    (build / "left-by-an-earlier-job.txt").write_text("stale")
    work = tmp_path / "pusher"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(work))
    (work / "later.txt").write_text("pushed after the release\n")
    git(work, "add", "later.txt")
    git(work, "commit", "-qm", "later")
    git(work, "push", "-q", "origin", "main")
    job = job_of(CHECKOUT, {}, predefined(served_origin, build, with_mirrorci_ci(tools), "main"))

    proc = job.run()

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(build, "rev-parse", "HEAD") == git(work, "rev-parse", "HEAD") == job.env["CI_COMMIT_SHA"]
    assert (build / "later.txt").exists() and not (build / "left-by-an-earlier-job.txt").exists()
    values = dotenv(build)
    assert values["MIRRORCI_METHOD"] == "http" and values["MIRRORCI_ORIGIN_FETCHED"] == "true"
    assert_like_git_clone_of(build, served_origin.http_url, "main", tmp_path)


def test_checkout_without_mirrorci_in_the_job_fails_with_what_to_do(served_origin, tools, tmp_path):
    build = tmp_path / "project"
    build.mkdir()
    proc = job_of(CHECKOUT, {}, predefined(served_origin, build, tools, "main")).run()
    assert proc.returncode == 1 and "mirrorci is not in the job's image" in proc.stderr


def test_hook_form_fills_the_build_directory_before_the_runners_fetch(served_origin, static_server, tools, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    build = tmp_path / "project"
    build.mkdir()
    job = job_of(CHECKOUT, {"git-strategy": "fetch"}, predefined(served_origin, build, with_mirrorci_ci(tools), "main"))
    assert job.env["GIT_STRATEGY"] == "fetch"

    hook = job.run("hook")
    assert hook.returncode == 0, hook.stdout + hook.stderr
    assert dotenv(build)["MIRRORCI_METHOD"] == "http"
    # the runner's fetch (GIT_STRATEGY fetch), then the script: mirrorci does not run again
    git(build, "fetch", "-q", "--prune", served_origin.http_url, "+refs/heads/*:refs/remotes/origin/*")
    git(build, "checkout", "-q", "-f", job.env["CI_COMMIT_SHA"])
    git(build, "clean", "-q", "-ffdx", "-e", DOTENV)
    before = (build / DOTENV).stat().st_mtime_ns
    script = job.run()
    assert script.returncode == 0, script.stdout + script.stderr
    assert (build / DOTENV).stat().st_mtime_ns == before and "mirrorci" not in script.stderr
    assert git(build, "status", "--porcelain") == ""


def test_hook_without_mirrorci_leaves_the_fetch_to_the_runner(served_origin, tools, tmp_path):
    build = tmp_path / "project"
    build.mkdir()
    job = job_of(CHECKOUT, {"git-strategy": "fetch"}, predefined(served_origin, build, tools, "main"))
    hook = job.run("hook")
    assert hook.returncode == 0 and "the runner fetches as usual" in hook.stdout
    assert list(build.iterdir()) == []
