"""The environment handed to the CLI (the CI entry's way to pass secrets) never touches os.environ."""

from __future__ import annotations

import os

from mirrorci import cli, environment
from mirrorci.gitcmd import Git, git_env


def test_a_handed_in_environment_is_what_git_and_the_cli_read(monkeypatch):
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    before = dict(os.environ)
    handed = {"PATH": os.environ["PATH"], cli.TOKEN_ENV: "s3cret-token", "MIRRORCI_PROBE": "handed"}
    with environment.using(handed):
        assert cli._token()["token"] == "s3cret-token"
        assert git_env()["MIRRORCI_PROBE"] == "handed"
        shown = Git().out("-c", "alias.probe=!printf %s \"$MIRRORCI_PROBE\"", "probe")
        assert shown == "handed"  # git (and what it starts) runs with that environment
        assert cli.TOKEN_ENV not in os.environ
    assert dict(os.environ) == before
    assert "MIRRORCI_PROBE" not in git_env()


def test_none_keeps_the_process_environment(monkeypatch):
    monkeypatch.setenv("MIRRORCI_PROBE", "process")
    with environment.using(None):
        assert environment.get("MIRRORCI_PROBE") == "process"
        assert git_env()["MIRRORCI_PROBE"] == "process"


def test_nested_environments_restore_the_outer_one():
    with environment.using({"A": "1"}):
        with environment.using({"A": "2"}):
            assert environment.get("A") == "2"
        assert environment.get("A") == "1"
    assert environment.current() is os.environ
