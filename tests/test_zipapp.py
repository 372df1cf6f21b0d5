"""mirrorci.pyz (scripts/build-zipapp): one file that checks out with nothing but python3 and git.

The checkout runs under `python3 -I -S`: no site-packages, so boto3, gitpython and
the rest are out of reach, as on a runner or in a job image that never installed them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.e2e import assert_same_as_git_clone, publish_to_static
from tests.support.repos import git
from tests.support.zipapp import build_zipapp

CLEAN_PYTHON = (sys.executable, "-I", "-S")


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zipapp(tmp_path_factory.mktemp("zipapp") / "mirrorci.pyz")[0]


def run_pyz(pyz: Path, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLEAN_PYTHON, str(pyz), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_the_clean_interpreter_has_no_third_party_packages():
    """What makes the other tests here mean something."""
    for module in ("git", "boto3", "torf"):
        proc = subprocess.run([*CLEAN_PYTHON, "-c", f"import {module}"], capture_output=True, text=True)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module


def test_build_is_reproducible_and_holds_the_package(pyz, tmp_path):
    again, digest = build_zipapp(tmp_path / "again.pyz")
    assert again.read_bytes() == pyz.read_bytes()
    assert hashlib.sha256(pyz.read_bytes()).hexdigest() == digest
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n") and os.access(pyz, os.X_OK)
    names = zipfile.ZipFile(pyz).namelist()
    assert names[0] == "__main__.py" and "mirrorci/cli.py" in names and "mirrorci/ci/run.py" in names
    assert "LICENSE" in names and not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_version_and_help(pyz, tmp_path):
    version = run_pyz(pyz, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mirrorci ")
    assert run_pyz(pyz, "checkout", "--help", cwd=tmp_path).returncode == 0
    # no command runner here: an unknown word is the command line's usage error
    unknown = run_pyz(pyz, "sh", "-c", "echo ran", cwd=tmp_path)
    assert unknown.returncode == 2 and "ran" not in unknown.stdout and "invalid choice" in unknown.stderr


def test_checkout_with_only_the_standard_library_is_a_git_clone(pyz, served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)

    proc = run_pyz(pyz, "checkout", served_origin.http_url, "--path", tmp_path / "co", "--json", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["method"] == "http", result["fallbacks"]
    assert result["fallbacks"] == [] and result["final_fetch"] is False
    assert result["bytes_from_origin"] == 0 and result["bytes_from_mirror"] == published["bundle"]["size"]
    assert_same_as_git_clone(tmp_path / "co", served_origin.http_url, tmp_path)
    assert git(tmp_path / "co", "rev-parse", "HEAD") == git(served_origin.path, "rev-parse", "HEAD")

