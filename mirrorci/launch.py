"""One entry point for the container image and the single-file build (mirrorci.pyz).

The image's ENTRYPOINT (entrypoint.py) and `python3 mirrorci.pyz` both come here:

    publish | checkout [--gitlab] [--dotenv FILE]     the action or component: INPUT_* variables (mirrorci.ci)
    checkout URL ..., inspect URL, demo, --version    the command line (mirrorci.cli)
    sh -c '...', bash, git --version, anything else   runs as given (the image only)

A GitLab job starts its image with the runner's own shell command (`sh -c ...`,
the job's script on stdin), and `docker run IMAGE sh` is how people look inside
an image: neither should need `--entrypoint` or `entrypoint: [""]`. Only the
standard library is imported before the choice is made, so a command that is not
mirrorci's starts at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Literal

Kind = Literal["ci", "cli", "exec"]

# The CI mode's commands and its only options (mirrorci/ci/run.py); any other
# argument after publish/checkout means the command line's options.
ACTION_COMMANDS = ("publish", "checkout")
CI_FLAGS = ("--gitlab",)
CI_OPTIONS = ("--dotenv",)
# The command line's subcommands (mirrorci/cli.py); options start with "-".
CLI_COMMANDS = ("publish", "checkout", "inspect", "demo")


def dispatch(argv: Sequence[str]) -> tuple[Kind, list[str]]:
    """What to run for these arguments, and the arguments it gets."""
    args = list(argv)
    if not args:
        return "cli", ["--help"]
    first = args[0]
    if first in ACTION_COMMANDS and _only_ci_options(args[1:]):
        return "ci", args
    if first in CLI_COMMANDS or first.startswith("-"):
        return "cli", args
    return "exec", args


def _only_ci_options(rest: Sequence[str]) -> bool:
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in CI_FLAGS or any(arg.startswith(f"{o}=") for o in CI_OPTIONS):
            i += 1
        elif arg in CI_OPTIONS and i + 1 < len(rest):
            i += 2
        else:
            return False
    return True


def main(argv: Sequence[str] | None = None, *, allow_exec: bool = True) -> int:
    """Run what `dispatch` chose.

    With `allow_exec=False` (the zipapp) unknown words go to the CLI, which names its commands.
    """
    kind, args = dispatch(sys.argv[1:] if argv is None else argv)
    if kind == "exec" and allow_exec:
        return _exec(args)
    try:
        if kind == "ci":
            from .ci import main as ci_main

            return ci_main(args)
        from .cli import run

        return run(args)
    except ModuleNotFoundError as exc:  # the single-file build carries no third-party packages
        print(f"mirrorci: this needs the Python package {exc.name!r}, which this build of mirrorci does not include; "
              "install mirrorci with pip, or use its container image", file=sys.stderr)
        return 2


def _exec(args: list[str]) -> int:
    """Replace this process with the command, as a shell would: same stdin, environment and PID."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(args[0], args)
    except FileNotFoundError:
        print(f"{args[0]}: command not found (mirrorci's commands: {', '.join(CLI_COMMANDS)}, --help)", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"{args[0]}: cannot run: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached: execvp does not return
