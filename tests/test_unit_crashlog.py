"""An unexpected error: one line on stderr naming a log file, the traceback in that file, no secret in either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorci import cli, crashlog, log


def _crash() -> None:
    raise KeyError("no such thing")


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No runner temp dir, a cache dir of this test's own; returns that cache dir."""
    for name in ("RUNNER_TEMP", "MIRRORCI_DEBUG", "GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_guarded_prints_one_line_naming_the_log_that_holds_the_traceback(isolated, capsys):
    code, result = cli.guarded(_crash)

    assert (code, result) == (1, None)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    expected = isolated / "mirrorci" / "mirrorci.log"
    assert lines[0] == f"error: unexpected KeyError: 'no such thing' (traceback in {expected})"
    text = expected.read_text()
    assert "Traceback (most recent call last)" in text
    assert 'raise KeyError("no such thing")' in text and "in _crash" in text
    assert expected.stat().st_mode & 0o077 == 0


def test_the_runner_temp_dir_comes_first(isolated, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "runner"))
    cli.guarded(_crash)
    assert f"(traceback in {tmp_path / 'runner' / 'mirrorci.log'})" in capsys.readouterr().err
    assert not isolated.exists()


def test_an_unwritable_place_is_skipped(tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    env = {"RUNNER_TEMP": str(blocked), "HOME": str(tmp_path / "home")}
    try:
        _crash()
    except KeyError as exc:
        path = crashlog.save(exc, env)
    assert path == tmp_path / "home" / ".cache" / "mirrorci" / "mirrorci.log"
    assert "KeyError" in path.read_text()


def test_with_nowhere_in_the_environment_the_log_is_a_new_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    try:
        _crash()
    except KeyError as exc:
        path = crashlog.save(exc, {})
    assert path is not None and path.parent == tmp_path and path.name.startswith("mirrorci-")
    assert "Traceback" in path.read_text()


def test_a_symlink_in_place_of_the_log_is_not_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep me")
    (tmp_path / "runner").mkdir()
    (tmp_path / "runner" / "mirrorci.log").symlink_to(target)
    try:
        _crash()
    except KeyError as exc:
        path = crashlog.save(exc, {"RUNNER_TEMP": str(tmp_path / "runner"), "HOME": str(tmp_path / "home")})
    assert target.read_text() == "keep me"
    assert path == tmp_path / "home" / ".cache" / "mirrorci" / "mirrorci.log"


def test_secrets_reach_neither_the_line_nor_the_log(isolated, monkeypatch, capsys):
    secret = "tok-crash-secret-123"
    monkeypatch.setattr(log, "_secrets", set())
    log.mask(secret)

    def leak() -> None:
        raise RuntimeError(f"could not use https://user:{secret}@example.invalid/repo with {secret}")

    cli.guarded(leak)

    err = capsys.readouterr().err
    text = (isolated / "mirrorci" / "mirrorci.log").read_text()
    assert "RuntimeError" in err and "RuntimeError" in text
    assert secret not in err and secret not in text
    assert "***" in text


def test_the_real_command_keeps_exit_code_1_and_debug_still_raises(tmp_path):
    """A crash inside the command line process: one line and a log; with MIRRORCI_DEBUG the traceback itself."""
    code = ("import sys; from mirrorci import cli; cli.dispatch = lambda args: 1 / 0; "
            "sys.exit(cli.run(['checkout', 'x']))")
    env = {k: v for k, v in os.environ.items() if k not in ("RUNNER_TEMP", "GITHUB_ACTIONS", "GITLAB_CI")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    crash_log = tmp_path / "cache" / "mirrorci" / "mirrorci.log"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    expected = f"error: unexpected ZeroDivisionError: division by zero (traceback in {crash_log})"
    assert proc.stderr.splitlines() == [expected]
    assert "ZeroDivisionError" in crash_log.read_text()

    debug = subprocess.run([sys.executable, "-c", code], env={**env, "MIRRORCI_DEBUG": "1"}, capture_output=True,
                           text=True, timeout=60)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
