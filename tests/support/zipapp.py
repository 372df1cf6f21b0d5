"""Build mirrorci.pyz with the project's own script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build-zipapp"


def build_zipapp(output: Path) -> tuple[Path, str]:
    """Build with the project's script, as the release workflow does; (path, sha256 it printed)."""
    proc = subprocess.run([sys.executable, str(BUILD), "--output", str(output)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    digest, path = proc.stdout.split()
    assert Path(path) == output
    return output, digest
