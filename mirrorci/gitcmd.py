"""The git layer: every git command mirrorci runs goes through `Git`.

Environment (no prompts, no inherited GIT_DIR), error messages, secret redaction,
timeouts and the minimum git version are handled here, once. gitpython is used
for what needs no git process at all (finding a repository, reading its remotes
from its config), and only on the publish path: it is imported inside the
functions that use it, so a checkout runs with the standard library alone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from . import environment, log
from .errors import GitError, SourceFailed, UsageError

# Never prompt: CI has nobody to answer, and a prompt would hang the job.
_BASE_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
_CONNECT_ADVICE = ("Please make sure you have the correct access rights", "and the repository exists.")

# The oldest git with everything used here: `rev-parse --path-format=absolute` (2.31), beside
# `init --object-format` and `fetch --no-write-fetch-head` (2.29) and atomic `update-ref --stdin`.
MIN_VERSION = (2, 31)
_version_ok = False


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: mirrorci's (see environment.py), never prompting, no inherited GIT_DIR."""
    env = dict(environment.current())
    env.update(_BASE_ENV)
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    if extra:
        env.update(extra)
    return env


class GitTimeout(GitError, SourceFailed):
    """A git command ran out of its time; a mirror method falls back on it like on any SourceFailed."""


class GitTooOld(UsageError):
    """git is missing or older than MIN_VERSION: no mirror method or fallback can work, so nothing catches it."""


def parse_version(text: str) -> tuple[int, int] | None:
    """(major, minor) from `git --version` ("git version 2.39.5", "... 2.45.1.windows.1", "... (Apple Git-146)")."""
    m = re.search(r"\bversion (\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def require_git() -> None:
    """Check once per process that git is there and recent enough; GitTooOld says which version is needed and found."""
    global _version_ok
    if _version_ok:
        return
    needed = ".".join(map(str, MIN_VERSION))
    try:
        proc = subprocess.run(["git", "--version"], stdin=subprocess.DEVNULL, capture_output=True, env=git_env(),
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitTooOld(f"git {needed} or later is needed and `git --version` failed ({exc}); install git") from None
    found = proc.stdout.decode("utf-8", "replace").strip()
    version = parse_version(found)
    if version is None or version < MIN_VERSION:
        raise GitTooOld(f"git {needed} or later is needed, found {found or 'no version'}; install a newer git")
    _version_ok = True


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child started with start_new_session=True, and everything it spawned.

    Killing only `git` would leave git-remote-http, index-pack or ssh holding the
    pipes, and reading them to the end would then wait for those instead.
    """
    if not hasattr(os, "killpg"):  # Windows: no process groups to signal
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


class Git:
    """Runs git in one repository (or outside any, when `cwd` is None)."""

    def __init__(
        self, cwd: Path | None = None, config: Sequence[str] = (), env: Mapping[str, str] | None = None,
    ) -> None:
        self.cwd = cwd
        self.config = list(config)
        self.env = dict(env or {})

    def with_env(self, env: Mapping[str, str]) -> Git:
        """The same repository, with extra environment (e.g. origin's credentials) on every call."""
        return Git(self.cwd, self.config, {**self.env, **env})

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return git_env({**self.env, **(extra or {})})

    def argv(self, args: Sequence[str]) -> list[str]:
        """The command line for `git args`; the first one in the process checks git's version."""
        require_git()
        argv = ["git"]
        for item in self.config:
            argv += ["-c", item]
        return argv + list(args)

    def run(
        self,
        *args: str,
        input: bytes | str | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git; with `timeout` (seconds), the command and all its children are killed when it runs out
        and GitTimeout (a SourceFailed) is raised."""
        data = input.encode() if isinstance(input, str) else input
        if timeout is None:
            proc = subprocess.run(self.argv(args), cwd=self.cwd, input=data, capture_output=True, env=self._env(env))
        else:
            proc = self._run_bounded(args, data, env, timeout)
        if check and proc.returncode != 0:
            raise GitError(self._failure(args, proc.returncode, proc.stderr))
        return proc

    def _run_bounded(
        self, args: Sequence[str], data: bytes | None, env: Mapping[str, str] | None, timeout: float,
    ) -> subprocess.CompletedProcess[bytes]:
        with subprocess.Popen(
            self.argv(args), cwd=self.cwd, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(env),
            start_new_session=True,  # its own process group: on expiry every helper it started dies with it
        ) as proc:
            try:
                stdout, stderr = proc.communicate(data, timeout=max(0.0, timeout))
            except subprocess.TimeoutExpired:
                kill_group(proc)
                try:
                    proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:  # a grandchild that left the group still holds a pipe
                    pass
                raise GitTimeout(f"git {args[0]} did not finish within {timeout:.3g} s (--timeout)") from None
            except BaseException:
                kill_group(proc)
                raise
            return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def out(
        self, *args: str, input: bytes | str | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run and return stdout as text without the trailing newline."""
        out = self.run(*args, input=input, env=env, timeout=timeout).stdout
        return out.decode("utf-8", "surrogateescape").rstrip("\n")

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def git_path(self, name: str) -> Path:
        """An absolute path inside the repository's git directory (objects/pack, ...)."""
        return Path(self.out("rev-parse", "--path-format=absolute", "--git-path", name))

    def pack_bytes(self) -> int:
        """Total size of the repository's packs: how many bytes a fetch brought, measured after it."""
        return sum(p.stat().st_size for p in self.git_path("objects/pack").glob("pack-*.pack"))

    def update_refs(
        self, updates: Mapping[str, str], deletes: Iterable[str] = (), *, old: Mapping[str, str] | None = None,
    ) -> None:
        """Point each ref of `updates` at its object and delete `deletes`, all or nothing (one transaction).

        With `old`, every ref must still have the value `old` gives it (absent: must not exist),
        or nothing changes and GitError is raised: a lease, as `push --force-with-lease` takes.
        """
        lines = []
        for ref, oid in sorted(updates.items()):
            lines.append(f"update {ref} {oid}" + (f" {old.get(ref, '0' * len(oid))}" if old is not None else ""))
        for ref in deletes:
            lines.append(f"delete {ref}" + (f" {old[ref]}" if old is not None and ref in old else ""))
        if lines:
            self.run("update-ref", "--stdin", input="\n".join(lines) + "\n")

    def delete_refs(self, prefix: str) -> None:
        """Delete every ref under prefix in one transaction."""
        self.update_refs({}, self.out("for-each-ref", "--format=%(refname)", prefix).split())

    def popen(
        self,
        *args: str,
        stdin: int | IO[bytes] | None = subprocess.PIPE,
        stdout: int | IO[bytes] | None = subprocess.PIPE,
        stderr: int | IO[bytes] | None = subprocess.PIPE,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start git; with `new_session`, in its own process group, so kill_group() reaches its children."""
        return subprocess.Popen(
            self.argv(args), cwd=self.cwd, stdin=stdin, stdout=stdout, stderr=stderr, env=self._env(env),
            start_new_session=new_session,
        )

    def _failure(self, args: Sequence[str], code: int, stderr: bytes | None) -> str:
        # The last lines that say something: not blank lines, nor the advice git adds after every
        # failed connection, which would push out the reason ("Host key verification failed.").
        lines = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
        detail = [line for line in lines if line.strip() and line.strip() not in _CONNECT_ADVICE]
        tail = " | ".join(detail[-3:]) if detail else f"exit code {code}"
        return log.redact(f"git {args[0]} failed: {tail}")


@dataclass(frozen=True)
class Repository:
    """A local repository as publish sees it: where git runs, what names it, which remotes it has."""

    git_dir: Path
    top: Path  # the work tree, or the git directory of a bare repository
    remotes: dict[str, str]  # remote name -> URL, from the repository's config

    def remote_url(self, remote: str, flag: str = "--remote") -> str:
        """The URL of the remote named `remote`, or `remote` itself if it is a URL or a path (else UsageError)."""
        if remote in self.remotes:
            return self.remotes[remote]
        if urlsplit(remote).scheme or remote.startswith(("/", "./", "../")) or re.match(r"^[\w.-]+@[\w.-]+:", remote):
            return remote
        raise UsageError(f"{flag} {remote!r}: no such remote in the repository; give a remote name or a URL")


def open_repository(path: Path, flag: str = "--repo") -> Repository:
    """The repository at `path` (a work tree's top or a bare repository), read from its files by gitpython.

    Publish path only: gitpython is imported here, never when this module is.
    """
    require_git()  # before gitpython's import, which runs git itself and has its own, vaguer, complaint
    import git as gitpython

    try:
        repo = gitpython.Repo(path)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        raise UsageError(f"{flag} {path}: not a git repository; point it at a clone or a bare repository") from None
    with repo:
        remotes = {r.name: r.url for r in repo.remotes if r.config_reader.has_option("url")}
        return Repository(Path(repo.git_dir), Path(repo.working_tree_dir or repo.git_dir), remotes)


def remote_url(repo: Path, remote: str) -> str:
    """`--remote` (a remote's name, a URL or a path) of the repository at `repo`, as the URL git talks to."""
    return open_repository(repo).remote_url(remote)
