"""Where the step runs: GitHub Actions or GitLab CI/CD, and everything that differs between them.

The rest of the CI layer asks the platform, never the environment: the workspace,
the server and the job's own repository, the event's ref and commit, whether a
pull-request checkout is refused, where outputs, reports and post-step state go.

GitHub: outputs to `$GITHUB_OUTPUT`, a Markdown report to `$GITHUB_STEP_SUMMARY`,
state to `$GITHUB_STATE` for the post step; the event from `GITHUB_REF`,
`GITHUB_SHA` and the payload at `GITHUB_EVENT_PATH`.
GitLab: outputs as a dotenv report (the job's artifact); the event from the
predefined `CI_*` variables; the job token for the project's own server.
Masking and log groups are log.py's: it reads the same variables.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import auth, log, ssh
from ..errors import UsageError
from . import outputs as out
from .pullrequests import Request, check


def is_url(repository: str) -> bool:
    """A URL or path, as opposed to owner/name."""
    return ":" in repository or "\\" in repository or repository.startswith(("/", ".", "~"))


def repository_url(repository: str, server_url: str, ssh_user: str | None = None) -> str:
    """`owner/name` on the job's server (over ssh when there is a key to use, as actions/checkout does),
    or a URL (or path) as given."""
    if is_url(repository):
        return repository
    if ssh_user is not None:
        return ssh.repository_url(repository, server_url, ssh_user)
    if not server_url:
        raise UsageError("input repository: give owner/name together with github-server-url "
                         "(or GITHUB_SERVER_URL), or a full URL")
    return f"{server_url.rstrip('/')}/{repository.strip('/')}"


class Platform:
    """What a CI system gives a step. Subclasses fill in the differences."""

    name = "ci"
    token_user = auth.DEFAULT_TOKEN_USER
    workspace_vars: tuple[str, ...] = ()

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def workspace(self) -> Path:
        value = next((self.env[v] for v in self.workspace_vars if self.env.get(v)), "")
        return Path(value) if value else Path.cwd()

    def resolve(self, path: str) -> Path:
        p = Path(path or ".")
        return p if p.is_absolute() else self.workspace() / p

    # -- the repository and the event ---------------------------------------
    def server_url(self, given: str = "") -> str:
        return given

    def own_repository(self) -> str:
        """owner/name of the repository the job runs for."""
        return ""

    def url_of(self, repository: str, server: str, ssh_user: str | None = None) -> str:
        """Origin's URL; `ssh_user` when the step has an ssh key."""
        return repository_url(repository, server, ssh_user)

    def event_ref(self) -> tuple[str | None, str | None]:
        """The ref and commit the job runs for, which a checkout of its own repository defaults to."""
        return None, None

    def qualified(self, repository: str, server: str) -> str:
        """owner/name of `repository` (a name or a URL on `server`), to compare with the job's own."""
        url = repository.rstrip("/")
        if "://" in url and server and url.lower().startswith(server.rstrip("/").lower() + "/"):
            url = url[len(server.rstrip("/")) + 1:]
        return re.sub(r"\.git$", "", url)

    def check_pull_request(self, request: Request, allowed: bool) -> None:
        """Refuse what the platform considers unsafe to check out (GitHub: fork code in trusted events)."""

    def default_token(self, url: str) -> str:
        """A token for `url` when the step was given none."""
        return ""

    def leaves_existing_clone(self, target: Path) -> bool:
        """Whether the platform's own fetch takes care of a clone already in `target`."""
        return False

    def publish_remote(self, remote: str) -> str:
        """The remote `publish` pushes refs/mirrors/* to."""
        return remote

    def owner_dir(self) -> Path | None:
        """The directory whose owner the clone's files go to, when this process may be another user."""
        return None

    # -- results ---------------------------------------------------------------
    def save_state(self, name: str, value: str) -> None:
        """Hand a value to the post step; nothing on platforms without one."""

    def publish(self, command: str, outputs: Mapping[str, str], report: str, dotenv: Path | None) -> None:
        raise NotImplementedError


class GitHub(Platform):
    name = "github"
    workspace_vars = ("GITHUB_WORKSPACE",)

    def server_url(self, given: str = "") -> str:
        return given or self.env.get("GITHUB_SERVER_URL", "")

    def own_repository(self) -> str:
        return self.env.get("GITHUB_REPOSITORY", "")

    def event_ref(self) -> tuple[str | None, str | None]:
        """actions/checkout's default: GITHUB_REF (an unqualified one is a branch) at GITHUB_SHA."""
        ref, sha = self.env.get("GITHUB_REF") or None, self.env.get("GITHUB_SHA") or None
        if ref and sha and not ref.startswith("refs/"):
            ref = f"refs/heads/{ref}"
        return ref or sha, sha

    def event(self) -> tuple[str, dict[str, Any]]:
        """The event's name and payload (empty when the runner gave none or it cannot be read)."""
        path = self.env.get("GITHUB_EVENT_PATH")
        payload: Any = {}
        if path:
            try:
                payload = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warn(f"cannot read the event payload {path}: {exc}")
        return self.env.get("GITHUB_EVENT_NAME", ""), payload if isinstance(payload, dict) else {}

    def check_pull_request(self, request: Request, allowed: bool) -> None:
        if not allowed and not request.default:  # the payload is read only when it can matter
            event, payload = self.event()
            check(event, payload, request, allowed)

    def owner_dir(self) -> Path | None:
        return self.workspace()  # a container action runs as root in the runner user's workspace

    def save_state(self, name: str, value: str) -> None:
        out.save_state(name, value, self.env)

    def publish(self, command: str, outputs: Mapping[str, str], report: str, dotenv: Path | None) -> None:
        out.write_github_outputs(outputs, self.env)
        out.append_summary(report, self.env)


class GitLab(Platform):
    name = "gitlab"
    token_user = "gitlab-ci-token"
    workspace_vars = ("CI_PROJECT_DIR",)

    def server_url(self, given: str = "") -> str:
        return self.env.get("CI_SERVER_URL", "")

    def own_repository(self) -> str:
        return self.env.get("CI_PROJECT_PATH", "")

    def url_of(self, repository: str, server: str, ssh_user: str | None = None) -> str:
        """As the runner clones: the project's https URL ends in .git."""
        url = repository_url(repository, server, ssh_user)
        if "://" in url and not url.endswith(".git") and server and url.startswith(server):
            url += ".git"
        return url

    def event_ref(self) -> tuple[str | None, str | None]:
        """The pipeline's merge request ref, tag or branch, at the job's commit.

        With GIT_STRATEGY none nobody else checks it out; with fetch, the runner's
        fetch then checks out the same one.
        """
        env = self.env
        ref = env.get("CI_MERGE_REQUEST_REF_PATH") or env.get("CI_COMMIT_TAG") or env.get("CI_COMMIT_BRANCH")
        return ref or None, env.get("CI_COMMIT_SHA") or None

    def default_token(self, url: str) -> str:
        """The job token, for the project's own server only."""
        server = self.server_url()
        return self.env.get("CI_JOB_TOKEN", "") if server and url.startswith(server.rstrip("/") + "/") else ""

    def leaves_existing_clone(self, target: Path) -> bool:
        """With GIT_STRATEGY fetch (the hook form) an earlier job's clone is the runner's to update."""
        return (target / ".git").exists() and self.env.get("GIT_STRATEGY") != "none"

    def publish_remote(self, remote: str) -> str:
        """The runner's origin URL embeds the job token: publish to the project's plain URL instead."""
        server, project = self.env.get("CI_SERVER_URL"), self.env.get("CI_PROJECT_PATH")
        return f"{server.rstrip('/')}/{project}.git" if remote == "origin" and server and project else remote

    def publish(self, command: str, outputs: Mapping[str, str], report: str, dotenv: Path | None) -> None:
        path = dotenv or Path(self.env.get("MIRRORCI_DOTENV") or f"mirrorci-{command}.env")
        out.write_dotenv(outputs, path)
        log.info(f"outputs written to the dotenv report {path}")


def detect(gitlab: bool, env: Mapping[str, str] | None = None) -> Platform:
    """GitLab when asked (`--gitlab`) or when only GitLab's variables say so; GitHub otherwise."""
    env = os.environ if env is None else env
    on_gitlab = env.get("GITLAB_CI") == "true" and env.get("GITHUB_ACTIONS") != "true"
    return GitLab(env) if gitlab or on_gitlab else GitHub(env)
