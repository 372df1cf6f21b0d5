"""entrypoint.py as a runner starts it: INPUT_* variables, file commands, real servers."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirrorci.ci.inputs import Inputs, input_specs, to_argv
from mirrorci.ci.outputs import DOTENV_LIMIT, dotenv_text, github_output_text
from mirrorci.errors import UsageError
from tests.support import events
from tests.support.e2e import push_pull_request_ref
from tests.support.github import parse_github_output
from tests.support.repos import fsck_ok, git

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "ghs_" + uuid.uuid4().hex


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


def run_action(command: str, inputs: dict[str, str], tmp_path: Path, *, cwd: Path, env: dict[str, str] | None = None,
               args: tuple[str, ...] = ()) -> Run:
    files = tmp_path / f"file_commands-{uuid.uuid4().hex[:6]}"
    files.mkdir()
    output, summary = files / "output", files / "summary"
    output.touch()
    summary.touch()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "GITLAB_", "CI_"))}
    full = {
        **base,
        "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(cwd), "GIT_CONFIG_GLOBAL": str(tmp_path / "home.gitconfig"),
        **{f"INPUT_{k.upper()}": v for k, v in inputs.items()},
        **(env or {}),
    }
    proc = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), command, *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300)
    return Run(proc.returncode, proc.stdout, proc.stderr, parse_github_output(output.read_text()), summary.read_text())


def shallow_workspace(url: str, dest: Path) -> Path:
    """What actions/checkout leaves by default: depth 1, one branch, no tags, credentials persisted."""
    git(dest.parent, "clone", "-q", "--depth", "1", "--single-branch", "--no-tags", url, str(dest))
    stale = base64.b64encode(b"x-access-token:stale-token-from-checkout").decode()
    scheme, _, host = url.split("/", 3)[:3]
    git(dest, "config", f"http.{scheme}//{host}/.extraheader", f"AUTHORIZATION: basic {stale}")
    return dest


def publish_inputs(static_server, **extra: str) -> dict[str, str]:
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    return {"store": str(static_server.root / prefix), "public-url": f"{static_server.url}/{prefix}", "token": TOKEN,
            **extra}


def test_publish_then_checkout_as_a_github_job(served_origin, static_server, git_http, tmp_path):
    ws = shallow_workspace(served_origin.http_url, tmp_path / "workspace")
    git_http.reset()
    inputs = publish_inputs(static_server)

    pub = run_action("publish", inputs, tmp_path, cwd=ws)

    assert pub.code == 0, pub.stderr
    lines = pub.stderr.splitlines()
    assert lines[0] == f"::add-mask::{TOKEN}"  # masked before anything else is printed
    assert TOKEN not in pub.stdout + "\n".join(lines[1:]) + pub.summary + str(pub.outputs)
    assert any(line.startswith("::group::") for line in lines) and "::endgroup::" in lines
    expected_auth = "basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    seen = [h.get("Authorization") for h in git_http.headers_seen]
    assert seen and all(a == expected_auth for a in seen)  # the job's token, not the one the checkout left
    out = pub.outputs
    key = f"{served_origin.name.removesuffix('.git')}/bundles/{out['bundle-sha256']}.bundle"
    stored = Path(inputs["store"]) / key
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == out["bundle-sha256"]
    assert out["bundle-url"] == f"{inputs['public-url']}/{key}"
    assert out["bundle-size"] == str(stored.stat().st_size)
    assert out["bundle-list-url"].endswith("/bundle-list")
    refs = dict(reversed(line.split(" ")) for line in out["refs"].splitlines())
    assert refs["refs/mirrors/bundle/http"] == git(served_origin.path, "rev-parse", "refs/mirrors/bundle/http")
    assert out["info-hash"] == ""
    assert "### mirrorci publish" in pub.summary and out["bundle-sha256"] in pub.summary
    assert git(ws, "rev-parse", "--is-shallow-repository") == "true"

    # checkout into a fresh workspace, as the first step of a build job on a push to main
    ws2 = tmp_path / "build-workspace"
    ws2.mkdir()
    (ws2 / "left-by-an-earlier-job.txt").write_text("stale")
    main_sha = git(served_origin.path, "rev-parse", "main")
    server, name = served_origin.http_url.rsplit("/", 1)
    env = {"GITHUB_SERVER_URL": server, "GITHUB_REPOSITORY": name, "GITHUB_REF": "refs/heads/main",
           "GITHUB_SHA": main_sha}
    co = run_action("checkout", {"token": TOKEN, "persist-credentials": "true", "clean": "true", "fetch-tags": "true"},
                    tmp_path, cwd=ws2, env=env)

    assert co.code == 0, co.stderr
    assert co.stderr.splitlines()[0] == f"::add-mask::{TOKEN}"
    assert TOKEN not in co.stdout + "\n".join(co.stderr.splitlines()[1:]) + co.summary
    assert co.outputs == {
        "commit": main_sha, "ref": "refs/heads/main", "method": "http", "origin-fetched": "false",
        "bytes-from-mirror": out["bundle-size"], "bytes-from-origin": "0", "submodules": "",
    }
    assert not (ws2 / "left-by-an-earlier-job.txt").exists()
    assert git(ws2, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(ws2, "remote", "get-url", "origin") == served_origin.http_url
    # persist-credentials: readable by git through an included file, never in .git/config itself
    prefix = f"{served_origin.http_url.split('/', 3)[0]}//{served_origin.http_url.split('/', 3)[2]}/"
    assert any(expected_auth in v for v in git(ws2, "config", "--get-all", f"http.{prefix}.extraheader").splitlines())
    assert TOKEN not in (ws2 / ".git/config").read_text() and "extraheader" not in (ws2 / ".git/config").read_text()
    assert git(ws2, "tag") != ""  # fetch-tags: true, as git clone leaves them
    safe = git(tmp_path, "config", "-f", str(tmp_path / "home.gitconfig"), "--get-all", "safe.directory")
    assert str(ws2) in safe.splitlines()
    assert fsck_ok(ws2)
    assert "### mirrorci checkout" in co.summary and main_sha in co.summary


def test_checkout_of_a_pull_request_event_without_credentials_or_tags(served_origin, static_server, tmp_path):
    work, pr_commit = push_pull_request_ref(served_origin, tmp_path)
    assert run_action("publish", publish_inputs(static_server), tmp_path, cwd=work).code == 0

    ws = tmp_path / "ws"
    ws.mkdir()
    server, name = served_origin.http_url.rsplit("/", 1)
    env = {"GITHUB_SERVER_URL": server, "GITHUB_REPOSITORY": name, "GITHUB_REF": "refs/pull/7/merge",
           "GITHUB_SHA": pr_commit}
    co = run_action("checkout", {"token": TOKEN, "persist-credentials": "false", "set-safe-directory": "false"},
                    tmp_path, cwd=ws, env=env)

    assert co.code == 0, co.stderr
    assert co.outputs["commit"] == pr_commit and co.outputs["method"] == "http"
    assert git(ws, "rev-parse", "HEAD") == pr_commit and (ws / "pr.txt").exists()
    assert git(ws, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached, as actions/checkout leaves a PR
    assert TOKEN not in (ws / ".git/config").read_text() and "extraheader" not in (ws / ".git/config").read_text()
    assert git(ws, "tag") == ""  # fetch-tags defaults to false, as in actions/checkout
    assert not (tmp_path / "home.gitconfig").exists() or str(ws) not in (tmp_path / "home.gitconfig").read_text()


def test_checkout_leaves_the_events_commit_when_the_branch_moved_on(served_origin, static_server, tmp_path):
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(work))
    event_sha = git(work, "rev-parse", "main")
    assert run_action("publish", publish_inputs(static_server), tmp_path, cwd=work).code == 0
    (work / "later.txt").write_text("pushed after the event\n")
    git(work, "add", "later.txt")
    git(work, "commit", "-qm", "later")
    git(work, "push", "-q", "origin", "main")

    ws = tmp_path / "ws"
    ws.mkdir()
    server, name = served_origin.http_url.rsplit("/", 1)
    env = {"GITHUB_SERVER_URL": server, "GITHUB_REPOSITORY": name, "GITHUB_REF": "refs/heads/main",
           "GITHUB_SHA": event_sha}
    co = run_action("checkout", {}, tmp_path, cwd=ws, env=env)

    assert co.code == 0, co.stderr
    assert co.outputs["commit"] == event_sha
    assert git(ws, "rev-parse", "HEAD") == event_sha and git(ws, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert not (ws / "later.txt").exists()
    assert git(ws, "rev-parse", "origin/main") == git(work, "rev-parse", "HEAD")


def pull_request_job(served_origin, tmp_path: Path, name: str, payload: dict, **extra: str) -> dict[str, str]:
    """The variables of a `name` workflow for origin's repository, with the event payload in a file."""
    server, repository = served_origin.http_url.rsplit("/", 1)
    return {"GITHUB_SERVER_URL": server, "GITHUB_REPOSITORY": repository, "GITHUB_REF": "refs/heads/main",
            "GITHUB_SHA": git(served_origin.path, "rev-parse", "main"), **events.write_event(tmp_path, name, payload),
            **extra}


NOWHERE = "http://127.0.0.1:9/nothing-listens-here.git"


@pytest.mark.parametrize("event, payload, inputs", [
    ("pull_request_target", events.pull_request_target(), {"repository": NOWHERE, "ref": "refs/pull/7/merge"}),
    ("pull_request_target", events.pull_request_target(), {"repository": NOWHERE, "ref": events.MERGE_SHA}),
    ("pull_request_target", events.pull_request_target(),
     {"repository": "someone/repo", "github-server-url": "http://127.0.0.1:9"}),
    ("workflow_run", events.workflow_run(), {"repository": NOWHERE, "ref": events.HEAD_SHA}),
], ids=["pr-target-merge-ref", "pr-target-merge-commit", "pr-target-fork-repository", "workflow-run-head-commit"])
def test_fork_pull_request_code_is_refused_in_trusted_events(served_origin, tmp_path, event, payload, inputs):
    """actions/checkout v7: refused before anything is fetched (nothing listens there: a fetch would be exit code 1)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    env = pull_request_job(served_origin, tmp_path, event, payload)
    run = run_action("checkout", inputs, tmp_path, cwd=ws, env=env)
    assert run.code == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "set allow-unsafe-pr-checkout: true" in errors[0] and event in errors[0], run.stderr
    assert run.outputs == {} and list(ws.iterdir()) == []


@pytest.mark.parametrize("case", ["same-repository", "allowed", "default-checkout"])
def test_pull_request_checkouts_that_v7_allows(served_origin, static_server, tmp_path, case):
    work, pr_commit = push_pull_request_ref(served_origin, tmp_path)
    assert run_action("publish", publish_inputs(static_server), tmp_path, cwd=work).code == 0
    head = dict(events.BASE) if case == "same-repository" else events.FORK
    payload = events.pull_request_target(head_repo=head, head_sha=pr_commit, merge_sha=pr_commit)
    inputs = {} if case == "default-checkout" else {"ref": "refs/pull/7/merge"}
    if case == "allowed":
        inputs["allow-unsafe-pr-checkout"] = "true"
    ws = tmp_path / "ws"
    ws.mkdir()

    run = run_action("checkout", inputs, tmp_path, cwd=ws,
                     env=pull_request_job(served_origin, tmp_path, "pull_request_target", payload))

    assert run.code == 0, run.stderr
    expected = git(served_origin.path, "rev-parse", "main") if case == "default-checkout" else pr_commit
    assert run.outputs["commit"] == expected and git(ws, "rev-parse", "HEAD") == expected


def test_ssh_key_is_masked_line_by_line_and_never_printed(tmp_path):
    key = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *(uuid.uuid4().hex * 2 for _ in range(4)),
                     "-----END OPENSSH PRIVATE KEY-----"])
    ws = tmp_path / "ws"
    ws.mkdir()
    run = run_action("checkout", {"repository": NOWHERE, "ssh-key": key, "token": TOKEN}, tmp_path, cwd=ws)
    assert run.code in (1, 2), run.stderr
    masks = [line for line in run.stderr.splitlines() if line.startswith("::add-mask::")]
    assert all(f"::add-mask::{line}" in masks for line in key.splitlines())
    rest = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("::add-mask::"))
    assert not any(line in rest + run.stdout for line in key.splitlines()[1:-1]), run.stderr


@pytest.mark.parametrize("command, inputs, complaint", [
    ("publish", {"store": "ftp://x"}, "--store 'ftp://x'"),
    ("publish", {"store": "/tmp/x", "push": "maybe"}, "input push"),
    ("checkout", {"repository": "http://127.0.0.1:9/x.git", "verify": "fast"}, "input verify"),
    ("checkout", {"repository": "http://127.0.0.1:9/x.git", "s3-part-size": "lots"}, "input s3-part-size"),
    ("checkout", {"repository": "http://127.0.0.1:9/x.git", "submodules": "all"}, "input submodules"),
    ("checkout", {"repository": "http://127.0.0.1:9/x.git", "fetch-depth": "-1"}, "input fetch-depth"),
    ("checkout", {"repository": "http://127.0.0.1:9/x.git", "show-progress": "yes"}, "input show-progress"),
    ("checkout", {"repository": "http://127.0.0.1:9/x.git", "allow-unsafe-pr-checkout": "sure"},
     "input allow-unsafe-pr-checkout"),
])
def test_bad_input_is_an_error_annotation_with_exit_code_2(tmp_path, command, inputs, complaint):
    ws = tmp_path / "ws"
    ws.mkdir()
    if command == "publish":
        git(tmp_path, "init", "-q", str(ws))
        git(ws, "remote", "add", "origin", "http://127.0.0.1:9/x.git")
    run = run_action(command, {**inputs, "token": TOKEN}, tmp_path, cwd=ws)
    assert run.code == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and complaint in errors[0], run.stderr
    assert run.outputs == {} and TOKEN not in run.stderr.replace(f"::add-mask::{TOKEN}", "")


def test_failure_is_exit_code_1(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    run = run_action("checkout", {"repository": "git://127.0.0.1:9/nothing-listens-here.git"}, tmp_path, cwd=ws)
    assert run.code == 1 and any(line.startswith("::error::") for line in run.stderr.splitlines()), run.stderr


def test_gitlab_mode_writes_a_dotenv_report(served_origin, static_server, tmp_path):
    ws = shallow_workspace(served_origin.http_url, tmp_path / "project")
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    server, name = served_origin.http_url.rsplit("/", 1)
    gitlab = {"GITLAB_CI": "true", "GITHUB_ACTIONS": "", "CI_SERVER_URL": server,
              "CI_PROJECT_PATH": name.removesuffix(".git")}
    env = {**gitlab, "INPUT_STORE": str(static_server.root / prefix),
           "INPUT_PUBLIC_URL": f"{static_server.url}/{prefix}", "INPUT_TOKEN": TOKEN,
           "INPUT_TOKEN_USER": "gitlab-ci-token", "CI_PROJECT_DIR": str(ws)}
    pub = run_action("publish", {}, tmp_path, cwd=ws, env=env, args=("--dotenv", str(tmp_path / "publish.env")))
    assert pub.code == 0, pub.stderr
    assert "::" not in pub.stderr and TOKEN not in pub.stderr
    report = (tmp_path / "publish.env").read_text()
    values = dict(line.split("=", 1) for line in report.splitlines())
    assert values["MIRRORCI_BUNDLE_URL"].startswith(f"{static_server.url}/{prefix}/")
    assert len(values["MIRRORCI_BUNDLE_SHA256"]) == 64
    assert values["MIRRORCI_REFS"].endswith(" refs/mirrors/bundle/http")
    assert len(report.encode()) <= DOTENV_LIMIT and pub.outputs == {}

    build = tmp_path / "build"
    env = {**gitlab, "CI_PROJECT_DIR": str(build), "CI_COMMIT_BRANCH": "develop", "INPUT_PATH": str(build)}
    co = run_action("checkout", {}, tmp_path, cwd=tmp_path, env=env, args=("--gitlab",))
    assert co.code == 0, co.stderr
    values = dict(line.split("=", 1) for line in (tmp_path / "mirrorci-checkout.env").read_text().splitlines())
    assert values["MIRRORCI_METHOD"] == "http" and values["MIRRORCI_ORIGIN_FETCHED"] == "false"
    assert values["MIRRORCI_COMMIT"] == git(served_origin.path, "rev-parse", "develop")
    assert git(build, "remote", "get-url", "origin") == served_origin.http_url

    # an earlier job's repository is left to the runner's own fetch
    again = run_action("checkout", {}, tmp_path, cwd=tmp_path, env=env, args=("--gitlab",))
    assert again.code == 0 and "MIRRORCI_METHOD=existing" in (tmp_path / "mirrorci-checkout.env").read_text()


def test_inputs_read_both_spellings_and_strict_booleans():
    inputs = Inputs({"INPUT_PUBLIC-URL": "https://a", "INPUT_GIT_MIRRORS": "git://m1\n git://m2, git://m3",
                     "INPUT_CLEAN": "TRUE"})
    assert inputs.get("public-url") == "https://a"
    assert inputs.items("git-mirrors") == ["git://m1", "git://m2", "git://m3"]
    assert inputs.flag("clean") is True and inputs.flag("missing", True) is True
    with pytest.raises(UsageError, match="input clean"):
        Inputs({"INPUT_CLEAN": "yes"}).flag("clean")
    argv = to_argv("publish", inputs, {"store": "/s", "push": False})
    assert argv[:1] == ["publish"] and "--no-push" in argv and argv.count("--git-mirror") == 3
    assert "--public-url" in argv and "--json" not in argv


def test_every_cli_option_has_an_input_with_a_distinct_name():
    for command in ("publish", "checkout"):
        names = [spec.name for spec in input_specs(command)]
        assert len(names) == len(set(names))
        assert {"s3-endpoint-url", "s3-region", "path"} <= set(names)


def test_output_files_formats():
    text = github_output_text({"one": "1", "many": "a\nb"})
    assert text.startswith("one=1\nmany<<ghadelimiter_")
    assert parse_github_output(text) == {"one": "1", "many": "a\nb"}
    report = dotenv_text({"refs": "a b\nc d", "big": "x" * (DOTENV_LIMIT + 1), "after": "ok"})
    assert report == "MIRRORCI_REFS=a b c d\nMIRRORCI_AFTER=ok\n"


def test_publish_with_a_torrent_outputs_its_info_hash(served_origin, static_server, tmp_path):
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", served_origin.git_url, str(work))
    run = run_action("publish", publish_inputs(static_server, torrent="true"), tmp_path, cwd=work)
    assert run.code == 0, run.stderr
    assert len(run.outputs["info-hash"]) == 40 and run.outputs["info-hash"] in run.summary
    assert "refs/mirrors/bundle/torrent" in run.outputs["refs"]
