"""The CI layer's parts on their own: inputs to options, the platforms, the pull-request rule, reports, ownership."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirrorci import cli, ownership
from mirrorci.checkout import CheckoutResult
from mirrorci.ci import reports
from mirrorci.ci.inputs import Inputs, environment, input_specs, parse, secret_input_variables, secrets, to_argv
from mirrorci.ci.platform import GitHub, GitLab, detect
from mirrorci.ci.pullrequests import Request, check, refusal
from mirrorci.ci.run import resolve_target
from mirrorci.errors import UsageError
from mirrorci.gitcmd import Git
from tests.support import events

URL = "https://example.invalid/o/r.git"


def argv(inputs: dict[str, str], **overrides) -> list[str]:
    env = {f"INPUT_{k.upper()}": v for k, v in inputs.items()}
    return to_argv("checkout", Inputs(env), {"repository": URL, **overrides})


def test_actions_checkout_defaults_become_options():
    args = parse(argv({}))
    assert args.clean and args.persist_credentials and args.set_safe_directory
    assert args.fetch_depth == 1 and args.no_tags  # fetch-depth 1, fetch-tags false
    assert not args.no_progress and not args.no_ssh_strict and not args.no_sparse_checkout_cone
    assert args.submodules == "false" and not args.lfs and args.sparse_checkout == [] and args.ssh_user == "git"


def test_inverted_multiline_and_choice_inputs():
    args = parse(argv({
        "fetch-tags": "true", "show-progress": "false", "ssh-strict": "false", "sparse-checkout-cone-mode": "false",
        "sparse-checkout": "src/a,b\n  docs \n\n", "submodules": "Recursive", "lfs": "true", "filter": "blob:none",
        "ssh-known-hosts": "host ssh-ed25519 AAAA", "ssh-user": "deploy", "fetch-depth": "0", "clean": "false",
    }))
    assert not args.no_tags and args.no_progress and args.no_ssh_strict and args.no_sparse_checkout_cone
    assert args.sparse_checkout == ["src/a,b", "docs"]  # one pattern per line: a comma is part of it
    assert args.submodules == "recursive" and args.lfs and args.filter == "blob:none"
    assert args.ssh_known_hosts == "host ssh-ed25519 AAAA" and args.ssh_user == "deploy"
    assert args.fetch_depth == 0 and not args.clean


def test_inputs_set_by_the_ci_layer_are_not_inputs():
    names = {spec.name for spec in input_specs("checkout")}
    assert {"commit", "same-owner-as", "json", "no-tags", "no-progress"}.isdisjoint(names)
    assert {"fetch-tags", "show-progress", "ssh-strict", "sparse-checkout", "sparse-checkout-cone-mode"} <= names
    args = parse(to_argv("checkout", Inputs({}), {"repository": URL}, ["--commit", "a" * 40, "--same-owner-as", "/w"]))
    assert args.commit == "a" * 40 and args.same_owner_as == Path("/w") and args.remote_url == URL


@pytest.mark.parametrize("inputs, complaint", [
    ({"fetch-depth": "-1"}, "input fetch-depth: '-1': give 0 or more"),
    ({"submodules": "all"}, "input submodules: 'all' is not one of false, true, recursive"),
    ({"s3-part-size": "lots"}, "input s3-part-size: 'lots' is not a valid int"),
    ({"lfs": "yes"}, "input lfs: 'yes' is not a boolean"),
])
def test_a_bad_value_names_its_input(inputs, complaint):
    with pytest.raises(UsageError) as err:
        argv(inputs)
    assert str(err.value).startswith(complaint)


def test_a_required_input_that_is_missing():
    with pytest.raises(UsageError, match="input store is required"):
        to_argv("publish", Inputs({}))


def test_secrets_reach_the_cli_environment_and_are_masked_line_by_line():
    key = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAA", "AAAEbm9uZQAAAARub25l",
                     "-----END OPENSSH PRIVATE KEY-----"])
    inputs = Inputs({"INPUT_SSH-KEY": key, "INPUT_TOKEN": "tok-123", "INPUT_AWS_SECRET_ACCESS_KEY": "aws-456",
                     "INPUT_TRANSMISSION": "http://u:pw-789@host:9091/transmission/rpc"})
    env = environment("checkout", inputs, {"token-user": "gitlab-ci-token"})
    assert env == {cli.SSH_KEY_ENV: key, cli.TOKEN_ENV: "tok-123", cli.TOKEN_USER_ENV: "gitlab-ci-token",
                   "AWS_SECRET_ACCESS_KEY": "aws-456"}
    masked = secrets("checkout", inputs, {"AWS_SESSION_TOKEN": "session-000"})
    assert all("\n" not in s for s in masked)  # a mask request is one line
    assert set(key.splitlines()) | {"tok-123", "aws-456", "pw-789", "session-000"} <= set(masked)
    assert {"INPUT_SSH-KEY", "INPUT_SSH_KEY"} <= set(secret_input_variables("checkout"))
    assert "ssh-key" not in {i.split("INPUT_")[1].lower() for i in secret_input_variables("publish")}


# -- platforms ----------------------------------------------------------------

def test_github_event_ref_and_target():
    env = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "Owner/Repo",
           "GITHUB_REF": "main", "GITHUB_SHA": "c" * 40, "GITHUB_WORKSPACE": "/ws"}
    github = GitHub(env)
    assert github.event_ref() == ("refs/heads/main", "c" * 40)  # an unqualified ref is a branch
    target = resolve_target(github, Inputs({}))
    assert (target.url, target.ref, target.commit, target.default) == (
        "https://github.example/Owner/Repo", "refs/heads/main", "c" * 40, True)
    same = resolve_target(github, Inputs({"INPUT_REPOSITORY": "https://github.example/owner/repo.git"}))
    assert same.default and same.commit == "c" * 40  # the job's own repository, named by URL
    other = resolve_target(github, Inputs({"INPUT_REPOSITORY": "owner/other", "INPUT_REF": "d" * 40}))
    assert (other.ref, other.commit, other.default) == ("d" * 40, "d" * 40, False)
    over_ssh = resolve_target(github, Inputs({"INPUT_SSH-KEY": "k", "INPUT_SSH-USER": "deploy"}))
    assert over_ssh.url == "deploy@github.example:Owner/Repo.git"  # as actions/checkout fetches with a key
    assert github.resolve("sub") == Path("/ws/sub") and github.owner_dir() == Path("/ws")


def test_gitlab_event_ref_urls_and_job_token():
    env = {"CI_SERVER_URL": "https://gitlab.example", "CI_PROJECT_PATH": "group/project", "CI_JOB_TOKEN": "job-tok",
           "CI_COMMIT_TAG": "v1.0", "CI_COMMIT_SHA": "e" * 40, "CI_PROJECT_DIR": "/builds/p", "GIT_STRATEGY": "none"}
    gitlab = GitLab(env)
    target = resolve_target(gitlab, Inputs({}))
    assert (target.url, target.ref, target.commit) == ("https://gitlab.example/group/project.git", "v1.0", "e" * 40)
    assert gitlab.default_token(target.url) == "job-tok"
    assert gitlab.default_token("https://elsewhere.example/x.git") == ""  # the job token stays on its own server
    assert gitlab.publish_remote("origin") == "https://gitlab.example/group/project.git"
    assert gitlab.owner_dir() is None and gitlab.token_user == "gitlab-ci-token"


def test_the_platform_comes_from_the_flag_or_the_environment():
    assert isinstance(detect(False, {"GITHUB_ACTIONS": "true"}), GitHub)
    assert isinstance(detect(False, {"GITLAB_CI": "true"}), GitLab)
    assert isinstance(detect(True, {"GITHUB_ACTIONS": "true"}), GitLab)


def test_github_refuses_fork_code_from_the_event_payload(tmp_path):
    env = events.write_event(tmp_path, "pull_request_target", events.pull_request_target())
    github = GitHub(env)
    with pytest.raises(UsageError, match="set allow-unsafe-pr-checkout: true"):
        github.check_pull_request(Request("owner/repo", "refs/pull/7/merge", None, default=False), allowed=False)
    github.check_pull_request(Request("owner/repo", "refs/pull/7/merge", None, default=False), allowed=True)
    github.check_pull_request(Request("owner/repo", "refs/heads/main", "f" * 40, default=True), allowed=False)


# -- actions/checkout v7's rule ------------------------------------------------------

FORK_PR = events.pull_request_target()


@pytest.mark.parametrize("event, payload, request_, refused", [
    ("pull_request_target", FORK_PR, Request("owner/repo", "refs/pull/7/merge", None, False), True),
    ("pull_request_target", FORK_PR, Request("owner/repo", "refs/pull/7/head", None, False), True),
    ("pull_request_target", FORK_PR, Request("owner/repo", "", events.HEAD_SHA.upper(), False), True),
    ("pull_request_target", FORK_PR, Request("Someone/Repo", "refs/heads/feature", None, False), True),
    ("pull_request_target", FORK_PR, Request("owner/repo", "refs/heads/main", "3" * 40, False), False),
    ("pull_request_target", FORK_PR, Request("owner/repo", "refs/pull/7/merge", None, True), False),  # the default
    ("pull_request_target", events.pull_request_target(head_repo=events.BASE),
     Request("owner/repo", "refs/pull/7/merge", None, False), False),  # a branch of the same repository
    ("pull_request", FORK_PR, Request("owner/repo", "refs/pull/7/merge", None, False), False),
    ("workflow_run", events.workflow_run(), Request("owner/repo", "", events.HEAD_SHA, False), True),
    ("workflow_run", events.workflow_run(trigger="push"), Request("owner/repo", "", events.HEAD_SHA, False), False),
    ("workflow_run", events.workflow_run(trigger="pull_request_target", head_sha="4" * 40),
     Request("owner/repo", "", "5" * 40, False), False),
    ("pull_request_target", {}, Request("owner/repo", "refs/pull/7/merge", None, False), False),  # no payload
])
def test_fork_pull_request_rule(event, payload, request_, refused):
    assert (refusal(event, payload, request_) is not None) is refused
    check(event, payload, request_, allowed=True)  # allow-unsafe-pr-checkout: true lets every case through


def test_workflow_run_after_pull_request_target_does_not_count_head_sha():
    """There head_sha is the base branch's commit, not the fork's: only head_commit.id counts."""
    payload = events.workflow_run(trigger="pull_request_target")
    payload["workflow_run"]["head_sha"] = "6" * 40
    assert refusal("workflow_run", payload, Request("owner/repo", "", "6" * 40, False)) is None
    assert refusal("workflow_run", payload, Request("owner/repo", "", events.HEAD_SHA, False)) is not None


# -- reports -----------------------------------------------------------------------

def test_checkout_report_lists_submodules_and_lfs():
    result = reports.checkout_result({
        "path": "/w", "method": "http", "head": "a" * 40, "ref": "refs/heads/main", "final_fetch": False,
        "bytes_from_mirror": 2048, "bytes_from_origin": 0, "timings": {"total": 1.5}, "future_key": 1,
        "submodules": [{"path": "libs/one", "commit": "b" * 40, "method": "http", "bytes_from_mirror": 4096},
                       {"path": "libs/two", "commit": "c" * 40, "method": "origin"}],
        "lfs": {"objects": 3, "from_mirror": 2, "bytes_from_mirror": 3072},
    })
    outputs = reports.checkout_outputs(result)
    assert outputs["submodules"] == f"{'b' * 40} http libs/one\n{'c' * 40} origin libs/two"
    assert outputs["origin-fetched"] == "false" and outputs["bytes-from-mirror"] == "2048"
    text = reports.checkout_report(result, "https://u:secret@example.invalid/o/r.git")
    assert "| Submodule `libs/one` | `bbbbbbbbbbbb` via http (4.0 KiB from the mirror) |" in text
    assert "| Submodule `libs/two` | `cccccccccccc` via origin |" in text
    assert "LFS objects" in text and "from mirror: 2" in text and "secret" not in text


def test_checkout_report_without_submodules_or_lfs():
    result = CheckoutResult(path="/w", head="a" * 40)
    text = reports.checkout_report(result, URL)
    assert "Submodule" not in text and "LFS" not in text and reports.checkout_outputs(result)["submodules"] == ""


# -- ownership ---------------------------------------------------------------------

def test_trust_adds_the_path_to_safe_directory_once(tmp_path, monkeypatch):
    config = tmp_path / "global.gitconfig"
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    assert ownership.trust(tmp_path / "repo") is True
    assert ownership.trust(tmp_path / "repo") is False
    listed = Git().out("config", "--global", "--get-all", "safe.directory").splitlines()
    assert listed == [str(tmp_path / "repo")]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing owners needs root")
def test_files_go_to_the_owner_of_the_workspace(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "repo" / "sub").mkdir(parents=True)
    (workspace / "repo" / "sub" / "file").write_text("x")
    (workspace / "repo" / "link").symlink_to("/etc/hostname")
    os.chown(workspace, 4321, 4321)
    assert ownership.give_to_owner_of(workspace, workspace / "repo") == 4
    assert {p.lstat().st_uid for p in [workspace / "repo", *(workspace / "repo").rglob("*")]} == {4321}
    assert Path("/etc/hostname").stat().st_uid == 0  # the link itself changed, not its target
    outside = tmp_path / "outside"
    outside.mkdir()
    assert ownership.give_to_owner_of(workspace, outside) == 0 and outside.stat().st_uid == 0
