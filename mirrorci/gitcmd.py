"""The one small wrapper around the git command line.

gitpython covers repository bookkeeping; bundles, index-pack, atomic pushes with
leases and streaming plumbing are done with the git CLI through this module, so
that environment, error messages and secret redaction are handled in one place.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from . import log
from .errors import GitError, SourceFailed

# Never prompt: CI has nobody to answer, and a prompt would hang the job.
_BASE_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_BASE_ENV)
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    if extra:
        env.update(extra)
    return env


class GitTimeout(GitError, SourceFailed):
    """A git command ran out of its time; a mirror method falls back on it like on any SourceFailed."""


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

    def __init__(self, cwd: Path | None = None, config: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.config = list(config)
        self.env = dict(env or {})

    def with_env(self, env: Mapping[str, str]) -> "Git":
        """The same repository, with extra environment (e.g. origin's credentials) on every call."""
        return Git(self.cwd, self.config, {**self.env, **env})

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return git_env({**self.env, **(extra or {})})

    def argv(self, args: Sequence[str]) -> list[str]:
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
        stderr_to_log: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git; with `timeout` (seconds), the command and all its children are killed when it runs out
        and GitTimeout (a SourceFailed) is raised."""
        data = input.encode() if isinstance(input, str) else input
        if timeout is None:
            proc = subprocess.run(
                self.argv(args),
                cwd=self.cwd,
                input=data,
                stdout=subprocess.PIPE,
                stderr=None if stderr_to_log else subprocess.PIPE,
                env=self._env(env),
            )
        else:
            proc = self._run_bounded(args, data, stderr_to_log, env, timeout)
        if check and proc.returncode != 0:
            raise GitError(self._failure(args, proc.returncode, proc.stderr))
        return proc

    def _run_bounded(
        self, args: Sequence[str], data: bytes | None, stderr_to_log: bool, env: Mapping[str, str] | None,
        timeout: float,
    ) -> subprocess.CompletedProcess[bytes]:
        with subprocess.Popen(
            self.argv(args), cwd=self.cwd, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=None if stderr_to_log else subprocess.PIPE, env=self._env(env),
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
        return self.run(*args, input=input, env=env, timeout=timeout).stdout.decode("utf-8", "surrogateescape").rstrip("\n")

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def git_path(self, name: str) -> Path:
        """An absolute path inside the repository's git directory (objects/pack, ...)."""
        return Path(self.out("rev-parse", "--path-format=absolute", "--git-path", name))

    def pack_bytes(self) -> int:
        """Total size of the repository's packs: how many bytes a fetch brought, measured after it."""
        return sum(p.stat().st_size for p in self.git_path("objects/pack").glob("pack-*.pack"))

    def delete_refs(self, prefix: str) -> None:
        """Delete every ref under prefix in one transaction."""
        refs = self.out("for-each-ref", "--format=%(refname)", prefix).split()
        if refs:
            self.run("update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs))

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
        detail = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
        tail = " | ".join(detail[-3:]) if detail else f"exit code {code}"
        return log.redact(f"git {args[0]} failed: {tail}")
