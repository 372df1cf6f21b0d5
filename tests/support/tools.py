"""Command-line tools the test extra installs (validators, linters)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """A tool from the test extra; its absence fails in CI and skips elsewhere."""
    for candidate in (Path(sys.executable).parent / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
