"""The image's entry point (mirrorci/launch.py): mirrorci for its own words, any other command as given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirrorci.launch import dispatch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv, kind", [
    # what the actions and components run: the CI mode, inputs from INPUT_* variables
    (["publish"], "ci"),
    (["checkout"], "ci"),
    (["checkout", "--gitlab"], "ci"),
    (["checkout", "--gitlab", "--dotenv", "/builds/p/mirrorci-checkout.env"], "ci"),
    (["publish", "--dotenv=out.env", "--gitlab"], "ci"),
    # the command line
    (["checkout", "https://example.invalid/r.git", "--path", "r"], "cli"),
    (["publish", "--store", "s3://b/p"], "cli"),
    (["checkout", "--help"], "cli"),
    (["checkout", "--dotenv"], "cli"),  # no value: the CLI's usage error, not the CI mode's
    (["inspect", "https://example.invalid/r.git"], "cli"),
    (["demo"], "cli"),
    (["--version"], "cli"),
    (["--help"], "cli"),
    (["-h"], "cli"),
    # anything else, as a GitLab runner or `docker run IMAGE ...` starts it
    (["sh", "-c", "if [ -x /usr/local/bin/bash ]; then exec /usr/local/bin/bash; fi"], "exec"),
    (["sh"], "exec"),
    (["bash", "-lc", "make test"], "exec"),
    (["git", "--version"], "exec"),
    (["mirrorci", "inspect", "x"], "exec"),  # on PATH in the image
    (["/bin/sh", "-c", "checkout"], "exec"),
    (["Checkout"], "exec"),
])
def test_dispatch(argv, kind):
    got, args = dispatch(argv)
    assert (got, args) == (kind, argv)


def test_no_arguments_show_the_help():
    assert dispatch([]) == ("cli", ["--help"])


def run_entrypoint(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), *argv], capture_output=True, text=True,
                          input=input, timeout=60)


def test_entrypoint_runs_other_commands_with_their_stdin_and_exit_code():
    proc = run_entrypoint("sh", "-c", "read line; echo \"got $line\"; exit 7", input="hello\n")
    assert (proc.returncode, proc.stdout) == (7, "got hello\n")


def test_entrypoint_unknown_command_is_127_and_names_mirrorcis_commands():
    proc = run_entrypoint("no-such-command-here")
    assert proc.returncode == 127
    assert "no-such-command-here: command not found" in proc.stderr and "checkout" in proc.stderr


def test_entrypoint_mirrorci_words_reach_mirrorci():
    assert run_entrypoint("--version").stdout.startswith("mirrorci ")
    usage = run_entrypoint("checkout", "--path")
    assert usage.returncode == 2 and "mirrorci checkout: argument --path" in usage.stderr  # the command line's parser
