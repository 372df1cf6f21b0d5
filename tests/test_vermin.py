"""The minimum Python (3.10, the oldest on current hosted runner images) is checked statically.

The checkout action runs mirrorci with whatever python3 the runner has, and only one
Python is installed here, so `vermin` reads the source for anything newer instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.tools import tool

ROOT = Path(__file__).resolve().parents[1]
MINIMUM = "3.10"


def vermin(*paths: Path) -> subprocess.CompletedProcess[str]:
    argv = [tool("vermin"), f"--target={MINIMUM}-", "--no-tips", "--violations", "--eval-annotations",
            "--no-make-paths-absolute", *map(str, paths)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mirrorci_runs_on_the_minimum_python():
    proc = vermin(ROOT / "mirrorci")
    assert proc.returncode == 0, f"newer than Python {MINIMUM}:\n{proc.stdout}\n{proc.stderr}"


def test_the_check_finds_what_is_too_new(tmp_path):
    (tmp_path / "new.py").write_text("import tomllib\n\ndef f(x: int | None) -> None:\n    pass\n")
    proc = vermin(tmp_path)
    assert proc.returncode != 0 and "tomllib" in proc.stdout, proc.stdout


def test_the_launcher_and_the_package_agree_on_the_minimum():
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={MINIMUM}"
    assert f"MIN_PYTHON = [{MINIMUM.replace('.', ', ')}]" in (ROOT / "checkout/dist/main.js").read_text()
    assert sys.version_info >= (3, 10)
