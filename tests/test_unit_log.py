"""Unit tests for mirrorci.log: redaction, masking and CI log commands."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mirrorci import log


@pytest.fixture(autouse=True)
def clean_log(monkeypatch):
    """Each test starts with no registered secrets and outside any CI."""
    monkeypatch.setattr(log, "_secrets", set())
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITLAB_CI", raising=False)


@pytest.fixture
def github(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")


# --- redact ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("https://user:s3cret@host.example/r.git", "https://***@host.example/r.git"),
    ("https://x-access-token:ghs_abc123@github.com/o/r", "https://***@github.com/o/r"),
    ("http://tok@h/r", "http://***@h/r"),
    ("s3://AKIAXX:secretkey@bucket/prefix", "s3://***@bucket/prefix"),
    ("git+ssh://me:pw@h:22/r", "git+ssh://***@h:22/r"),
    ("fetching https://u:p@a/r and https://v:q@b/s", "fetching https://***@a/r and https://***@b/s"),
    ("git failed: fatal: unable to access 'https://u:p@h/r/': 403",
     "git failed: fatal: unable to access 'https://***@h/r/': 403"),
])
def test_redact_hides_url_userinfo(text, expected):
    assert log.redact(text) == expected


@pytest.mark.parametrize("text", [
    "https://host.example/r.git",
    "git@github.com:o/r.git",  # scp-like: a user name, no secret
    "email me at a@b.example",
    "https://h/path@v1/x",  # '@' after the host is not userinfo
    "",
])
def test_redact_leaves_other_text_alone(text):
    assert log.redact(text) == text


def test_redact_hides_masked_secrets():
    log.mask("hunter2-token")
    log.mask("AKIAIOSFODNN7EXAMPLE")
    text = "token=hunter2-token key AKIAIOSFODNN7EXAMPLE again hunter2-token"
    assert log.redact(text) == "token=*** key *** again ***"


def test_mask_ignores_empty_and_short_values():
    for value in (None, "", "a", "ab"):
        log.mask(value)
    assert log._secrets == set()
    assert log.redact("a ab abc") == "a ab abc"


def test_redact_url():
    assert log.redact_url("https://u:p@h.example:8443/r.git?x=1#f") == "https://***@h.example:8443/r.git?x=1#f"
    assert log.redact_url("https://tok@h/r") == "https://***@h/r"
    assert log.redact_url("https://h/r") == "https://h/r"
    assert log.redact_url("/srv/git/r.git") == "/srv/git/r.git"


def test_redact_overlapping_secrets_for_any_hash_seed(tmp_path):
    script = textwrap.dedent("""
        from mirrorci import log
        log.mask("tok")
        log.mask("tokLONGSECRET")
        print(log.redact("x tokLONGSECRET y"))
    """)
    outputs = set()
    for seed in range(16):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        env.pop("GITHUB_ACTIONS", None)
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.add(proc.stdout.strip())
    assert outputs == {"x *** y"}


# --- mask ---------------------------------------------------------------------------------------


def test_mask_prints_add_mask_only_on_github(capsys, monkeypatch):
    log.mask("first-secret")
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    log.mask("second-secret")
    log.mask("second-secret")  # once per secret
    assert capsys.readouterr() == ("", "::add-mask::second-secret\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    log.mask("third-secret")
    assert capsys.readouterr() == ("", "")


def test_mask_registers_even_outside_github(capsys):
    log.mask("quiet-secret")
    log.info("value quiet-secret here")
    assert capsys.readouterr().err == "value *** here\n"


# --- info / warn / error ------------------------------------------------------------------------------


def test_plain_terminal_output(capsys):
    log.info("hello")
    log.warn("careful")
    log.error("broken")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "hello\nwarning: careful\nerror: broken\n"


def test_output_is_redacted(capsys, github):
    log.mask("sekrit-value")
    log.warn("pushing to https://u:p@h/r with sekrit-value")
    log.error("sekrit-value")
    assert capsys.readouterr().err == (
        "::add-mask::sekrit-value\n::warning::pushing to https://***@h/r with ***\n::error::***\n")


def test_github_commands_escape_percent_cr_lf(capsys, github):
    log.warn("50% done\r\nline two\nline three %0A")
    log.error("a\rb")
    err = capsys.readouterr().err
    assert err == "::warning::50%25 done%0D%0Aline two%0Aline three %250A\n::error::a%0Db\n"
    assert err.count("\n") == 2  # one line per command


def test_plain_warning_is_not_escaped(capsys):
    log.warn("50% done")
    assert capsys.readouterr().err == "warning: 50% done\n"


# --- group ---------------------------------------------------------------------------------------------


def test_group_on_github(capsys, github):
    with log.group("Creating bundle"):
        log.info("inside")
    assert capsys.readouterr().err == "::group::Creating bundle\ninside\n::endgroup::\n"


def test_group_on_github_ends_even_on_error(capsys, github):
    with pytest.raises(RuntimeError):
        with log.group("Step"):
            raise RuntimeError("boom")
    assert capsys.readouterr().err == "::group::Step\n::endgroup::\n"


def test_group_title_is_redacted(capsys, github):
    with log.group("Listing refs of https://user:pw@h/r"):
        pass
    assert capsys.readouterr().err == "::group::Listing refs of https://***@h/r\n::endgroup::\n"


def test_group_in_a_terminal(capsys):
    with log.group("Step"):
        pass
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "== Step"
    assert lines[1].startswith("   done in ") and lines[1].endswith("s")


def test_group_on_gitlab(capsys, monkeypatch):
    monkeypatch.setenv("GITLAB_CI", "true")
    with log.group("Creating Bundle!"):
        pass
    start, end = capsys.readouterr().err.rstrip("\n").split("\n")
    assert start.startswith("\x1b[0Ksection_start:")
    assert start.endswith("creating_bundle_[collapsed=true]\r\x1b[0KCreating Bundle!")
    assert end.startswith("\x1b[0Ksection_end:") and end.endswith(":creating_bundle_\r\x1b[0K")


# --- step ----------------------------------------------------------------------------------------------


def test_step_is_a_group_and_adds_its_time(capsys, github):
    timings: dict[str, float] = {"fetch": 100.0}
    with log.step("fetch", timings, "Fetching"):
        log.info("inside")
    with log.step("fetch", timings):  # no title: timed, not a group
        log.info("again")
    assert capsys.readouterr().err == "::group::Fetching\ninside\n::endgroup::\nagain\n"
    assert set(timings) == {"fetch"} and timings["fetch"] >= 100.0  # added to, not replaced


def test_step_records_its_time_when_it_fails(capsys, github):
    timings: dict[str, float] = {}
    with pytest.raises(RuntimeError):
        with log.step("upload", timings, "Uploading"):
            raise RuntimeError("boom")
    assert "upload" in timings and timings["upload"] >= 0
    assert capsys.readouterr().err == "::group::Uploading\n::endgroup::\n"


def test_ci_detection(monkeypatch):
    assert not log.on_github() and not log.on_gitlab()
    monkeypatch.setenv("GITHUB_ACTIONS", "TRUE")
    assert not log.on_github()  # the runner sets exactly "true"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITLAB_CI", "true")
    assert log.on_github() and log.on_gitlab()
