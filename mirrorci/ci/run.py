"""What the container entry point does: inputs in, the CLI's API, outputs out.

GitHub (GITHUB_ACTIONS=true): outputs to `$GITHUB_OUTPUT`, a Markdown report to
`$GITHUB_STEP_SUMMARY`, `::group::`/`::add-mask::`/`::error::` workflow commands.
GitLab (`--gitlab`, or GITLAB_CI=true): outputs as a dotenv report.
Exit codes are the CLI's: 2 bad inputs or configuration, 1 failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import auth, cli, log
from ..errors import UsageError
from ..gitcmd import Git
from . import outputs as out
from .inputs import Inputs, parse, to_argv

# Inputs holding secrets, and the environment variables the CLI reads them from.
SECRET_INPUTS = {
    "token": cli.TOKEN_ENV,
    "aws-access-key-id": "AWS_ACCESS_KEY_ID",
    "aws-secret-access-key": "AWS_SECRET_ACCESS_KEY",
    "aws-session-token": "AWS_SESSION_TOKEN",
    "transmission-user": "MIRRORCI_TRANSMISSION_USER",
    "transmission-password": "MIRRORCI_TRANSMISSION_PASSWORD",
}
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MIRRORCI_TRANSMISSION_PASSWORD", cli.TOKEN_ENV)
# Inputs the entry point reads itself, beyond the CLI's options (see inputs.py).
EXTRA_INPUTS = {
    "publish": {*SECRET_INPUTS, "token-user"},
    "checkout": {*SECRET_INPUTS, "token-user", "fetch-tags", "fetch-depth", "set-safe-directory", "github-server-url"},
}
# What the checkout hands its post step (checkout/dist/post.js): `STATE_<name>` there.
STATE_REPOSITORY = "repository_path"
STATE_CREDENTIALS = "credentials_file"
# Whose values are not secret but still kept out of logs (as other actions do).
MASK_ALSO = ("aws-access-key-id",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="entrypoint.py", description="mirrorci in CI: inputs from INPUT_* variables")
    parser.add_argument("command", choices=("publish", "checkout"))
    parser.add_argument("--gitlab", action="store_true", help="GitLab mode: outputs as a dotenv report (default when GITLAB_CI=true)")
    parser.add_argument("--dotenv", type=Path, help="dotenv report to write in GitLab mode (default: mirrorci-<command>.env)")
    args = parser.parse_args(argv)
    ci = Context(gitlab=args.gitlab or (log.on_gitlab() and not log.on_github()), inputs=Inputs())

    def work() -> tuple[dict[str, str], str]:
        ci.take_secrets()  # first: nothing may be printed before the runner knows what to mask
        ci.prepare_git()
        return publish(ci) if args.command == "publish" else checkout(ci)

    code, results = cli.guarded(work)
    if code or results is None:
        return code
    outputs, report = results
    if ci.gitlab:
        path = args.dotenv or Path(os.environ.get("MIRRORCI_DOTENV") or f"mirrorci-{args.command}.env")
        out.write_dotenv(outputs, path)
        log.info(f"outputs written to the dotenv report {path}")
    else:
        out.write_github_outputs(outputs)
        out.append_summary(report)
    return 0


class Context:
    def __init__(self, gitlab: bool, inputs: Inputs) -> None:
        self.gitlab = gitlab
        self.inputs = inputs
        self.token = ""

    def take_secrets(self) -> None:
        """Mask every secret input, move it where the CLI reads it, drop the INPUT_* copy."""
        for name in SECRET_INPUTS:
            value = self.inputs.get(name)
            if value:
                log.mask(value)
        for name in MASK_ALSO:
            log.mask(self.inputs.get(name))
        for var in SECRET_ENV:
            log.mask(os.environ.get(var, "").strip())
        transmission = self.inputs.get("transmission")
        if transmission and urlsplit(transmission).password:
            log.mask(urlsplit(transmission).password)
        for name, var in SECRET_INPUTS.items():
            value = self.inputs.get(name)
            for key in (f"INPUT_{name.upper()}", f"INPUT_{name.upper().replace('-', '_')}"):
                os.environ.pop(key, None)
            if value:
                os.environ[var] = value
        self.token = os.environ.get(cli.TOKEN_ENV, "").strip()
        os.environ[cli.TOKEN_USER_ENV] = self.inputs.get("token-user", auth.DEFAULT_TOKEN_USER)

    def prepare_git(self) -> None:
        """The workspace belongs to another user inside the container: trust it, for this process."""
        os.environ.update(auth.config_env({"safe.directory": "*"}))
        os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")

    def use_token_for(self, url: str) -> None:
        """A given token replaces any credential an earlier checkout left in the repository's config.

        Git sends every matching extraHeader, and servers refuse two Authorization
        headers; an empty value resets the list before ours is added (auth.py).
        """
        prefix = auth.url_prefix(url)
        if self.token and prefix:
            os.environ.update(auth.config_env({f"http.{prefix}.extraheader": ""}))

    def workspace(self) -> Path:
        ws = os.environ.get("GITHUB_WORKSPACE") or os.environ.get("CI_PROJECT_DIR")
        return Path(ws) if ws else Path.cwd()

    def resolve(self, path: str) -> Path:
        p = Path(path or ".")
        return p if p.is_absolute() else self.workspace() / p


# -- publish ----------------------------------------------------------------

def publish(ci: Context) -> tuple[dict[str, str], str]:
    repo = ci.resolve(ci.inputs.get("path", "."))
    remote = ci.inputs.get("remote", "origin")
    overrides: dict[str, Any] = {"path": str(repo), "remote": remote}
    if ci.gitlab and remote == "origin" and os.environ.get("CI_SERVER_URL") and os.environ.get("CI_PROJECT_PATH"):
        # The runner's origin URL embeds the job token; publish to the project's plain URL instead.
        overrides["remote"] = f"{os.environ['CI_SERVER_URL'].rstrip('/')}/{os.environ['CI_PROJECT_PATH']}.git"
    ci.use_token_for(_remote_url(repo, overrides["remote"]))
    summary = cli.dispatch(parse(to_argv("publish", ci.inputs, overrides)))
    return publish_outputs(summary), publish_report(summary)


def _remote_url(repo: Path, remote: str) -> str:
    if "://" in remote:
        return remote
    proc = subprocess.run(["git", "-C", str(repo), "config", "--get", f"remote.{remote}.url"],
                          capture_output=True, text=True)
    return proc.stdout.strip()


def publish_outputs(summary: dict[str, Any]) -> dict[str, str]:
    torrent = summary.get("torrent") or {}
    return {
        "name": summary["name"],
        "bundle-url": summary["bundle"]["url"],
        "bundle-sha256": summary["bundle"]["sha256"],
        "bundle-size": str(summary["bundle"]["size"]),
        "bundle-list-url": summary.get("bundle_list_url") or "",
        "refs": "\n".join(f"{oid} {ref}" for ref, oid in sorted(summary.get("refs", {}).items())),
        "info-hash": str(torrent.get("info_hash") or ""),
    }


def publish_report(summary: dict[str, Any]) -> str:
    b = summary["bundle"]
    rows: list[tuple[str, object]] = [
        ("Mirror", f"`{summary['name']}` in {summary['store']}"),
        ("Bundle", f"[{b['key']}]({b['url']})" if b["url"].startswith("http") else f"`{b['url']}`"),
        ("Size", f"{out.human_bytes(b['size'])}, {b['refs']} refs"),
        ("sha256", f"`{b['sha256']}`"),
    ]
    torrent = summary.get("torrent") or {}
    if torrent.get("info_hash"):
        rows.append(("Info hash", f"`{torrent['info_hash']}`"))
    rows += [(f"`{ref}`", f"`{oid[:12]}`") for ref, oid in sorted(summary.get("refs", {}).items())]
    if summary.get("timings", {}).get("total") is not None:
        rows.append(("Time", f"{summary['timings']['total']:.1f} s"))
    return "### mirrorci publish\n\n" + out.markdown_table(rows)


# -- checkout ---------------------------------------------------------------

def repository_url(repository: str, server_url: str) -> str:
    """`owner/name` on the job's server, or a URL as given."""
    if "://" in repository or repository.startswith(("/", "git@")):
        return repository
    if not server_url:
        raise UsageError("input repository: give owner/name together with github-server-url (or GITHUB_SERVER_URL), or a full URL")
    return f"{server_url.rstrip('/')}/{repository.strip('/')}"


def _event_ref(ci: Context, repository: str) -> tuple[str | None, str | None]:
    """actions/checkout's default: the ref and commit of the event, for the repository that triggered it."""
    env = os.environ
    if ci.gitlab:
        if repository not in ("", env.get("CI_PROJECT_PATH", "")):
            return None, None
        ref = env.get("CI_MERGE_REQUEST_REF_PATH") or env.get("CI_COMMIT_TAG") or env.get("CI_COMMIT_BRANCH")
        # The job's commit: with GIT_STRATEGY none (mirrorci in the job's script) nobody else
        # checks it out; with fetch, the runner's fetch then checks out the same one.
        return ref or None, env.get("CI_COMMIT_SHA") or None
    if repository.lower() not in ("", env.get("GITHUB_REPOSITORY", "").lower()):
        return None, None
    ref = env.get("GITHUB_REF") or None
    sha = env.get("GITHUB_SHA") or None
    return ref or sha, sha


def checkout(ci: Context) -> tuple[dict[str, str], str]:
    inputs, env = ci.inputs, os.environ
    repository = inputs.get("repository")
    if ci.gitlab:
        server = env.get("CI_SERVER_URL", "")
        url = repository_url(repository or env.get("CI_PROJECT_PATH", ""), server)
        if "://" in url and not url.endswith(".git") and server and url.startswith(server):
            url += ".git"
    else:
        server = inputs.get("github-server-url") or env.get("GITHUB_SERVER_URL", "")
        url = repository_url(repository or env.get("GITHUB_REPOSITORY", ""), server)
    ref, sha = (inputs.get("ref"), None) if inputs.get("ref") else _event_ref(ci, repository)
    target = ci.resolve(inputs.get("path", "."))
    depth = inputs.get("fetch-depth", "0")
    if depth != "0":
        log.info(f"fetch-depth {depth} ignored: mirrorci always checks out the full history")

    if ci.gitlab and (target / ".git").exists() and env.get("GIT_STRATEGY") != "none":
        log.info(f"{target} is already a repository (an earlier job's): the runner's own fetch updates it")
        return {"commit": "", "ref": ref or "", "method": "existing", "origin-fetched": "true",
                "bytes-from-mirror": "0", "bytes-from-origin": "0"}, ""

    overrides: dict[str, Any] = {
        "repository": url, "ref": ref or "", "path": str(target),
        "clean": inputs.bool("clean", True), "persist-credentials": inputs.bool("persist-credentials", True),
    }
    ci.use_token_for(url)
    if not ci.gitlab:  # the post step removes what persist-credentials leaves, even after a failure
        out.save_state(STATE_REPOSITORY, str(target))
    result = cli.dispatch(parse(to_argv("checkout", inputs, overrides)))
    if not ci.gitlab and result.get("credentials_file"):
        out.save_state(STATE_CREDENTIALS, result["credentials_file"])
    repo = Git(Path(result["path"]))

    if sha and result["head"] != sha:
        _move_to_event_commit(ci, repo, url, sha, result)
    if not inputs.bool("fetch-tags", True):
        tags = repo.out("for-each-ref", "--format=delete %(refname)", "refs/tags/")
        if tags:
            repo.run("update-ref", "--stdin", input=tags + "\n")
    if inputs.bool("set-safe-directory", True):
        _trust(Path(result["path"]))
    if not ci.gitlab:
        _give_to_workspace_owner(ci.workspace(), Path(result["path"]))
    outputs = {
        "commit": result["head"],
        "ref": result["ref"],
        "method": result["method"],
        "origin-fetched": "true" if result["final_fetch"] else "false",
        "bytes-from-mirror": str(result["bytes_from_mirror"]),
        "bytes-from-origin": str(result["bytes_from_origin"]),
    }
    return outputs, checkout_report(result, url)


def _move_to_event_commit(ci: Context, repo: Git, url: str, sha: str, result: dict[str, Any]) -> None:
    """The ref moved on since the event: leave the event's commit checked out, as actions/checkout does."""
    with log.group(f"Checking out the event's commit {sha[:12]}"):
        if not repo.ok("cat-file", "-e", f"{sha}^{{commit}}"):
            origin = repo.with_env(auth.origin_env(url, ci.token, os.environ.get(cli.TOKEN_USER_ENV) or auth.DEFAULT_TOKEN_USER))
            origin.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", sha)
        if result.get("detached"):
            repo.run("-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", sha)
        else:
            repo.run("reset", "--quiet", "--hard", sha)
        result["head"] = repo.out("rev-parse", "HEAD")
        result["final_fetch"] = True


def _trust(path: Path) -> None:
    """safe.directory in the global config, for later steps that run git in this container's HOME."""
    current = subprocess.run(["git", "config", "--global", "--get-all", "safe.directory"],
                             capture_output=True, text=True).stdout.split("\n")
    if str(path) not in current:
        subprocess.run(["git", "config", "--global", "--add", "safe.directory", str(path)], check=False)


def _give_to_workspace_owner(workspace: Path, path: Path) -> None:
    """Files a root container writes into the workspace go to its owner, so later steps on the host can change them."""
    try:
        st = workspace.stat()
    except OSError:
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or st.st_uid == 0 or not path.is_relative_to(workspace):
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, st.st_uid, st.st_gid)


def checkout_report(result: dict[str, Any], url: str) -> str:
    rows: list[tuple[str, object]] = [
        ("Repository", log.redact_url(url)),
        ("Commit", f"`{result['head']}` ({result['ref'] or 'HEAD'})"),
        ("Method", result["method"] + (f" ({result['apply_path']})" if result.get("apply_path") else "")),
        ("From the mirror", out.human_bytes(result["bytes_from_mirror"])),
        ("From origin", out.human_bytes(result["bytes_from_origin"]) if result["final_fetch"] else "nothing (no fetch needed)"),
    ]
    rows += [(f"Fallback from {f['method']}", f["reason"]) for f in result.get("fallbacks", [])]
    if result.get("timings", {}).get("total") is not None:
        rows.append(("Time", f"{result['timings']['total']:.1f} s"))
    return "### mirrorci checkout\n\n" + out.markdown_table(rows)
