"""Unit tests for the command line (`python -m mirrorci`): exit codes, messages, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirrorci import __version__, cli
from tests.support.cli import CliResult, run_cli
from tests.support.repos import git


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line]


def assert_usage_error(proc: CliResult, *mentions: str) -> str:
    """Exit 2, nothing on stdout, exactly one error line on stderr naming what to change."""
    assert proc.code == 2, proc.stderr
    assert proc.stdout == ""
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert proc.stderr.rstrip("\n").splitlines()[-1] == lines[0]  # the message is the last line
    for word in mentions:
        assert word in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def published(origin_bare: Path, tmp_path: Path) -> tuple[Path, dict]:
    """origin_bare with refs/mirrors/* written by `publish --no-push` to a local store."""
    store = tmp_path / "store"
    proc = run_cli("publish", "--repo", str(origin_bare), "--store", str(store), "--no-push", "--json", cwd=tmp_path)
    return origin_bare, json.loads(proc.stdout)


# --- argparse-level usage errors -----------------------------------------------------------


def test_version(tmp_path):
    proc = run_cli("--version", cwd=tmp_path)
    assert proc.stdout == f"mirrorci {__version__}\n"


def test_no_command(tmp_path):
    assert_usage_error(run_cli(cwd=tmp_path, expect=None), "required", "command")


def test_unknown_command(tmp_path):
    assert_usage_error(run_cli("frobnicate", cwd=tmp_path, expect=None), "invalid choice", "frobnicate")


def test_publish_without_store(tmp_path):
    assert_usage_error(run_cli("publish", cwd=tmp_path, expect=None), "--store")


def test_bad_s3_addressing_style(tmp_path):
    line = assert_usage_error(run_cli("checkout", "https://h/r.git", "--s3-addressing-style", "sideways",
                                      cwd=tmp_path, expect=None), "--s3-addressing-style", "sideways")
    assert "path" in line and "virtual" in line  # it says what to use instead


def test_bad_verify_choice(tmp_path):
    proc = run_cli("checkout", "https://h/r.git", "--verify", "maybe", cwd=tmp_path, expect=None)
    assert_usage_error(proc, "--verify")


def test_timeout_not_a_number(tmp_path):
    proc = run_cli("checkout", "https://h/r.git", "--timeout", "soon", cwd=tmp_path, expect=None)
    assert_usage_error(proc, "--timeout")


# --- our own UsageErrors ------------------------------------------------------------------------


def test_bad_prefer(tmp_path):
    proc = run_cli("checkout", "https://h/r.git", "--path", str(tmp_path / "dest"), "--prefer", "http,carrier-pigeon",
                   cwd=tmp_path, expect=None)
    line = assert_usage_error(proc, "--prefer", "carrier-pigeon")
    assert "http" in line and "s3" in line and "git" in line
    assert not (tmp_path / "dest").exists()


def test_empty_prefer(tmp_path):
    assert_usage_error(run_cli("checkout", "https://h/r.git", "--prefer", ",", cwd=tmp_path, expect=None), "--prefer")


@pytest.mark.parametrize("store", ["ftp://x", "http://h/bucket", "gs://bucket/prefix"])
def test_store_with_unsupported_scheme(store, origin_bare, tmp_path):
    proc = run_cli("publish", "--repo", str(origin_bare), "--store", store, "--no-push", cwd=tmp_path, expect=None)
    assert_usage_error(proc, "--store", store, "s3://")
    assert "refs/mirrors" not in git(origin_bare, "for-each-ref")


def test_nonexistent_repo(tmp_path):
    missing = tmp_path / "no-such-repo"
    proc = run_cli("publish", "--repo", str(missing), "--store", str(tmp_path / "s"), cwd=tmp_path, expect=None)
    line = assert_usage_error(proc, "--repo", str(missing))
    assert "not a git repository" in line
    assert not (tmp_path / "s").exists()


def test_repo_that_is_not_a_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = run_cli("publish", "--repo", str(plain), "--store", str(tmp_path / "s"), cwd=tmp_path, expect=None)
    assert_usage_error(proc, "--repo", "not a git repository")


def test_unknown_remote(origin_bare, tmp_path):
    assert_usage_error(run_cli("publish", "--repo", str(origin_bare), "--store", str(tmp_path / "s"),
                               "--remote", "nosuchremote", cwd=tmp_path, expect=None), "--remote", "nosuchremote")


def test_bad_git_mirror_url(origin_bare, tmp_path):
    assert_usage_error(run_cli("publish", "--repo", str(origin_bare), "--store", str(tmp_path / "s"), "--no-push",
                               "--git-mirror", "ftp://m/r.git", cwd=tmp_path, expect=None), "--git-mirror", "ftp://m/r.git")


def test_checkout_into_non_empty_directory(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine\n")
    assert_usage_error(run_cli("checkout", "https://h/r.git", "--path", str(dest), cwd=tmp_path, expect=None), "--path")
    assert (dest / "keep.txt").read_text() == "mine\n"


def test_ref_that_origin_does_not_have(published, tmp_path):
    origin, _ = published
    dest = tmp_path / "dest"
    proc = run_cli("checkout", str(origin), "--path", str(dest), "--allow-file-urls", "--ref", "no-such-branch",
                   cwd=tmp_path, expect=None)
    assert_usage_error(proc, "--ref", "no-such-branch")
    assert not dest.exists()  # the half-made clone is removed


# --- --json --------------------------------------------------------------------------------------


def test_publish_json_is_the_only_stdout(published, tmp_path):
    origin, summary = published
    store = tmp_path / "store"
    assert summary["name"] == "origin"
    assert summary["store"] == str(store.resolve())
    assert summary["remote"] is None
    refs = git(origin, "for-each-ref", "--format=%(refname) %(objectname)", "refs/mirrors/")
    assert dict(line.split(" ") for line in refs.splitlines()) == summary["refs"]
    bundle_file = store / summary["bundle"]["key"]
    assert bundle_file.stat().st_size == summary["bundle"]["size"]
    assert summary["bundle"]["url"] == bundle_file.resolve().as_uri()
    assert (store / summary["index"]["key"]).is_file()
    assert (store / "origin" / "bundle-list").is_file()


def test_checkout_json_is_the_only_stdout(published, tmp_path):
    origin, _ = published
    dest = tmp_path / "dest"
    proc = run_cli("checkout", str(origin), "--path", str(dest), "--allow-file-urls", "--json", cwd=tmp_path)
    summary = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert summary["path"] == str(dest.resolve())
    assert summary["method"] == "http"
    assert summary["mirror_uri"].startswith("file://")
    assert summary["final_fetch"] is False
    assert summary["fallbacks"] == [] and summary["warnings"] == []
    assert summary["head"] == git(origin, "rev-parse", "HEAD") == git(dest, "rev-parse", "HEAD")
    assert "checked out" in proc.stderr  # the human log went to stderr


def test_checkout_without_json_prints_nothing_on_stdout(published, tmp_path):
    origin, _ = published
    proc = run_cli("checkout", str(origin), "--path", str(tmp_path / "d"), "--allow-file-urls", cwd=tmp_path)
    assert proc.stdout == ""


def test_checkout_file_bundles_need_allow_file_urls(published, tmp_path):
    origin, _ = published
    proc = run_cli("checkout", str(origin), "--path", str(tmp_path / "d"), "--json", cwd=tmp_path)
    summary = json.loads(proc.stdout)
    assert summary["method"] == "origin"
    assert any("--allow-file-urls" in f["reason"] for f in summary["fallbacks"])


# --- in-process: the parser ----------------------------------------------------------------------


def test_parser_defaults():
    args = cli.build_parser().parse_args(["checkout", "https://h/r.git"])
    assert (args.verify, args.timeout, args.json, args.allow_file_urls, args.no_mirrors) == ("auto", 900.0, False,
                                                                                            False, False)
    assert (args.stall_timeout, args.max_bundle_size) == (30.0, 64 << 30)
    args = cli.build_parser().parse_args(["publish", "--store", "s3://b/p"])
    assert (args.repo, args.remote, args.no_push, args.json) == (Path("."), "origin", False, False)
