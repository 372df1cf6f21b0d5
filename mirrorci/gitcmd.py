"""The one small wrapper around the git command line.

gitpython covers repository bookkeeping; bundles, index-pack, atomic pushes with
leases and streaming plumbing are done with the git CLI through this module, so
that environment, error messages and secret redaction are handled in one place.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from . import log
from .errors import GitError

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
    ) -> subprocess.CompletedProcess[bytes]:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            self.argv(args),
            cwd=self.cwd,
            input=data,
            stdout=subprocess.PIPE,
            stderr=None if stderr_to_log else subprocess.PIPE,
            env=self._env(env),
        )
        if check and proc.returncode != 0:
            raise GitError(self._failure(args, proc.returncode, proc.stderr))
        return proc

    def out(self, *args: str, input: bytes | str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Run and return stdout as text without the trailing newline."""
        return self.run(*args, input=input, env=env).stdout.decode("utf-8", "surrogateescape").rstrip("\n")

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
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(args), cwd=self.cwd, stdin=stdin, stdout=stdout, stderr=stderr, env=self._env(env)
        )

    def _failure(self, args: Sequence[str], code: int, stderr: bytes | None) -> str:
        detail = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
        tail = " | ".join(detail[-3:]) if detail else f"exit code {code}"
        return log.redact(f"git {args[0]} failed: {tail}")
