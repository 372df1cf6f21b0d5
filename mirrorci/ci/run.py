"""The CI entry: the step's inputs become a `mirrorci publish|checkout` call, its result the step's outputs.

    entrypoint.py publish|checkout [--gitlab] [--dotenv FILE]

This layer only adapts. Whatever a checkout does (the event's commit, tags,
safe.directory, the files' owner) is a CLI option; whatever differs between
GitHub and GitLab is the platform's (platform.py). Secrets go to the CLI in the
environment it runs with, built here in one place (CliCall), never on a command
line. Exit codes are the CLI's: 2 bad inputs or configuration, 1 failure.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import auth, cli, log
from ..gitcmd import Git
from . import reports
from .inputs import Inputs, environment, parse, secret_input_variables, secrets, to_argv
from .platform import Platform, detect
from .pullrequests import Request

# What the checkout hands its post step (checkout/dist/post.js): `STATE_<name>` there.
STATE_REPOSITORY = "repository_path"
STATE_CREDENTIALS = "credentials_file"
STATE_REMOVE = "remove_files"  # one path per line: files the checkout left for the post step to delete
SHA = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="entrypoint.py", description="mirrorci in CI: inputs from INPUT_* variables")
    parser.add_argument("command", choices=("publish", "checkout"))
    parser.add_argument("--gitlab", action="store_true",
                        help="GitLab mode: outputs as a dotenv report (default when GITLAB_CI=true)")
    parser.add_argument("--dotenv", type=Path,
                        help="dotenv report to write in GitLab mode (default: mirrorci-<command>.env)")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    call = CliCall(args.command, detect(args.gitlab, env), Inputs(env), env)

    def work() -> tuple[dict[str, str], str]:
        call.mask_secrets()  # first: nothing may be printed before the runner knows what to mask
        return (publish if args.command == "publish" else checkout)(call)

    code, results = cli.guarded(work)
    if code or results is None:
        return code
    outputs, report = results
    call.platform.publish(args.command, outputs, report, args.dotenv)
    return 0


@dataclass
class CliCall:
    """One `mirrorci <command>` call from a step: its inputs, the platform, the job's environment."""

    command: str
    platform: Platform
    inputs: Inputs
    job_env: Mapping[str, str]

    def mask_secrets(self) -> None:
        for secret in secrets(self.command, self.inputs, self.job_env):
            log.mask(secret)

    def git_config(self, token_url: str | None = None) -> dict[str, str]:
        """Git settings for this step's processes: the workspace may belong to another user (a container
        action runs as root), and a token given to the step replaces any credential an earlier checkout
        left in the repository's config (git would send both, and servers refuse two Authorization headers;
        an empty value resets the list before ours is added, see auth.py)."""
        pairs = {"safe.directory": "*"}
        prefix = auth.url_prefix(token_url or "")
        if prefix and self.cli_env(token_url or "").get(cli.TOKEN_ENV):
            pairs[f"http.{prefix}.extraheader"] = ""
        return auth.config_env(pairs, base=dict(self.job_env))

    def cli_env(self, url: str) -> dict[str, str]:
        """The CLI's environment inputs: the token (the platform's job token by default), its user, keys."""
        defaults = {"token-user": self.platform.token_user}
        if self.inputs.raw("token") is None:
            defaults["token"] = self.platform.default_token(url)
        return environment(self.command, self.inputs, defaults)

    def environment(self, url: str) -> dict[str, str]:
        """The job's environment, without the runner's copies of secret inputs, plus the CLI's inputs."""
        hidden = set(secret_input_variables(self.command))
        env = {k: v for k, v in self.job_env.items() if k not in hidden}
        env.setdefault("GIT_TERMINAL_PROMPT", "0")
        return {**env, **self.cli_env(url), **self.git_config(url)}

    def run(self, overrides: Mapping[str, Any], url: str, extra: list[str] | None = None) -> dict[str, Any]:
        """The CLI's own parse and dispatch, handed this step's environment (nothing written to os.environ)."""
        args = parse(to_argv(self.command, self.inputs, overrides, extra or []))
        return cli.dispatch(args, env=self.environment(url))


# -- publish ----------------------------------------------------------------

def publish(call: CliCall) -> tuple[dict[str, str], str]:
    repo = call.platform.resolve(call.inputs.get("path", "."))
    remote = call.platform.publish_remote(call.inputs.get("remote", "origin"))
    summary = call.run({"path": str(repo), "remote": remote}, _remote_url(call, repo, remote))
    return reports.publish_outputs(summary), reports.publish_report(summary)


def _remote_url(call: CliCall, repo: Path, remote: str) -> str:
    if "://" in remote:
        return remote
    found = Git(repo, env=call.git_config()).run("config", "--get", f"remote.{remote}.url", check=False)
    return found.stdout.decode("utf-8", "replace").strip()


# -- checkout ---------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """What the step checks out: origin's URL, the ref and commit, and whether it is the job's own default."""

    url: str
    qualified: str  # owner/name
    ref: str | None
    commit: str | None
    default: bool


def resolve_target(platform: Platform, inputs: Inputs) -> Target:
    """actions/checkout's rules: the job's own repository defaults to the event's ref and commit; a `ref`
    that is a commit id is the commit; owner/name is fetched over ssh when the step has an ssh key."""
    server = platform.server_url(inputs.get("github-server-url"))
    own = platform.own_repository()
    repository = inputs.get("repository") or own
    url = platform.url_of(repository, server, inputs.get("ssh-user", "git") if inputs.get("ssh-key") else None)
    qualified = platform.qualified(repository, server)
    is_own = bool(own) and qualified.lower() == platform.qualified(own, server).lower()
    ref = inputs.get("ref")
    if ref:
        return Target(url, qualified, ref, ref if SHA.match(ref) else None, default=False)
    event_ref, event_commit = platform.event_ref() if is_own else (None, None)
    return Target(url, qualified, event_ref, event_commit, default=is_own)


def checkout(call: CliCall) -> tuple[dict[str, str], str]:
    platform, inputs = call.platform, call.inputs
    target = resolve_target(platform, inputs)
    pr_ref = "" if target.ref == target.commit else target.ref or ""
    platform.check_pull_request(Request(target.qualified, pr_ref, target.commit, target.default),
                                inputs.flag("allow-unsafe-pr-checkout", False))
    path = platform.resolve(inputs.get("path", "."))
    if platform.leaves_existing_clone(path):
        log.info(f"{path} is already a repository (an earlier job's): the runner's own fetch updates it")
        return reports.existing_clone_outputs(target.ref or ""), ""

    extra = ["--commit", target.commit] if target.commit and target.commit != target.ref else []
    owner = platform.owner_dir()
    extra += ["--same-owner-as", str(owner)] if owner else []
    platform.save_state(STATE_REPOSITORY, str(path))  # the post step cleans up even after a failure
    summary = call.run({"repository": target.url, "ref": target.ref or "", "path": str(path)}, target.url, extra)
    result = reports.checkout_result(summary)
    if result.credentials_file:
        platform.save_state(STATE_CREDENTIALS, result.credentials_file)
    leftovers = summary.get("cleanup_files") or []
    if leftovers:
        platform.save_state(STATE_REMOVE, "\n".join(map(str, leftovers)))
    return reports.checkout_outputs(result), reports.checkout_report(result, target.url)
