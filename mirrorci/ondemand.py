"""Third-party packages, installed the first time a method that needs them is actually tried.

The checkout path needs only the standard library and git. The s3 method needs
boto3, the torrent method torf plus libtorrent (embedded client) or
transmission-rpc (daemon). Where mirrorci was installed with pip they come with
it. Where it runs from the action's own files (checkout/action.yml), the launcher
sets MIRRORCI_DEPS_DIR, a directory in the runner's tool cache: the first attempt
of such a method installs the packages there with the pins of requirements.lock,
into a directory keyed by the Python version and the pins, so later jobs on the
same runner find them ready. Anything that goes wrong is a SourceFailed: the
checkout records it and falls back to the next method, as for any other fault.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from . import log
from .errors import SourceFailed

DEPS_ENV = "MIRRORCI_DEPS_DIR"
LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
COMPLETE = ".mirrorci-complete"  # written last: a directory without it is an interrupted install

Packages = tuple[tuple[str, str], ...]  # (module imported, distribution that provides it)
# What each feature imports, and the distribution that provides it. A new mirror method may
# instead pass its own Packages to `require`; either way requirements.lock must pin them.
FEATURES: dict[str, Packages] = {
    "s3": (("boto3", "boto3"), ("botocore", "botocore")),
    "torrent": (("torf", "torf"),),
    "libtorrent": (("libtorrent", "libtorrent"),),
    "transmission": (("transmission_rpc", "transmission-rpc"),),
}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def enabled() -> bool:
    """Whether this process may install packages (the action's launcher set a directory for them)."""
    return bool(os.environ.get(DEPS_ENV, "").strip())


def missing(feature: str | Packages) -> list[str]:
    """Distributions of `feature` (a name in FEATURES, or the packages themselves) that cannot be imported here."""
    packages = FEATURES[feature] if isinstance(feature, str) else feature
    return [dist for module, dist in packages if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken installation counts as none
        return False


def pins(dists: list[str], lock_text: str) -> list[str]:
    """The requirement lines of requirements.lock for these distributions (markers kept)."""
    wanted = {_normalize(d) for d in dists}
    found = []
    for line in lock_text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[<>=!~;\s\[]", line, maxsplit=1)[0]
        if _normalize(name) in wanted:
            found.append(line)
    return found


def target_dir(base: Path, lock_text: str, requirements: list[str]) -> Path:
    """`<base>/<python X.Y>/<hash>`: one directory per interpreter and set of pins."""
    key = hashlib.sha256("\n".join([lock_text, *sorted(requirements)]).encode()).hexdigest()[:16]
    return base / f"{sys.version_info[0]}.{sys.version_info[1]}" / key


def _activate(path: Path) -> None:
    if str(path) not in sys.path:
        sys.path.append(str(path))
    importlib.invalidate_caches()


def require(feature: str | Packages, method: str, timeout: float | None = None) -> None:
    """Make `feature`'s packages importable for `method`, installing them if allowed, else SourceFailed."""
    absent = missing(feature)
    if not absent:
        return
    hint = f"{method} needs {', '.join(absent)}, which is not installed"
    base = os.environ.get(DEPS_ENV, "").strip()
    if not base:
        raise SourceFailed(f"{hint} (pip install {' '.join(absent)})")
    try:
        lock_text = LOCK.read_text(encoding="utf-8")
    except OSError:
        raise SourceFailed(f"{hint}, and requirements.lock is not beside the package to pin it") from None
    requirements = pins(absent, lock_text)
    if len(requirements) != len(absent):
        raise SourceFailed(f"{hint}, and requirements.lock does not pin it")
    target = target_dir(Path(base), lock_text, requirements)
    if not (target / COMPLETE).exists():
        _install(target, requirements, timeout, method)
    _activate(target)
    still = missing(feature)
    if still:
        raise SourceFailed(f"{hint}: installed into {target}, but {', '.join(still)} still cannot be imported "
                           f"(no build of it for this platform?)")


def _install(target: Path, requirements: list[str], timeout: float | None, method: str) -> None:
    """pip install --target a fresh sibling directory, then rename it into place (atomic for concurrent jobs)."""
    log.info(f"installing {' '.join(requirements)} for {method} into {target}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceFailed(f"{method}: cannot create {target.parent} for its packages: {exc}") from None
    tmp = target.parent / f".tmp-{target.name}-{secrets.token_hex(4)}"
    # -I: neither the working directory (the workspace) nor PYTHON* variables choose what pip is.
    argv = [sys.executable, "-I", "-m", "pip", "install", "--quiet", "--no-input", "--disable-pip-version-check",
            "--no-warn-script-location", "--target", str(tmp), "--constraint", str(LOCK), *requirements]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              cwd=target.parent)
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SourceFailed(
            f"{method}: installing {' '.join(requirements)} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise SourceFailed(f"{method}: cannot run pip: {exc}") from None
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR:")]
        detail = (errors or lines)[0 if errors else -1].strip()[:300] if lines else f"exit code {proc.returncode}"
        raise SourceFailed(f"{method}: installing {' '.join(requirements)} failed: {detail}")
    (tmp / COMPLETE).write_text(" ".join(requirements) + "\n")
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another job got there first: use its copy
        if not (target / COMPLETE).exists():
            raise SourceFailed(f"{method}: cannot move its packages into {target}") from None
