"""Run the real `mirrorci` command line in a subprocess, as a user or CI would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Set by a CI platform, they change how mirrorci logs: a test that wants them passes them in `env`.
PLATFORM_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without a CI platform's markers, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    return {**base, **(env or {})}


def run_cli(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
            expect: int | None = 0) -> CliResult:
    """`python -m mirrorci *args`; with ``expect`` (the default 0) the exit code must be that one."""
    proc = subprocess.run([sys.executable, "-m", "mirrorci", *map(str, args)],
                          capture_output=True, text=True, env=cli_env(env), cwd=cwd, timeout=300)
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    if expect is not None:
        assert proc.returncode == expect, f"exit {proc.returncode}, expected {expect}\n{proc.stderr}"
    return result
