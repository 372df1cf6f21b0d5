"""Where the traceback of an unexpected error goes: a log file that the one error line names.

An exception that is not a `MirrorciError` is a bug. The user sees one line, so that a
CI log stays readable, and the traceback is kept in a file to attach to a report (as
pre-commit keeps ~/.cache/pre-commit/pre-commit.log). The file holds the last crash only.

The text passes through `log.redact` first: a token that reached an exception message
must not reach a file that may be uploaded with the job's artifacts.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import __version__, log

LOG_NAME = "mirrorci.log"


def _directories(env: Mapping[str, str]) -> Iterator[Path]:
    """Where to write, best first: the runner's temp dir (kept for the job), then the user's cache."""
    if env.get("RUNNER_TEMP"):
        yield Path(env["RUNNER_TEMP"])
    if env.get("XDG_CACHE_HOME"):
        yield Path(env["XDG_CACHE_HOME"]) / "mirrorci"
    home = env.get("HOME")
    if home:
        yield Path(home) / ".cache" / "mirrorci"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only; a symlink there is refused, not followed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _write_temporary(text: str) -> Path:
    """A new file of its own in the temp dir, where a fixed name could be taken by another user."""
    fd, name = tempfile.mkstemp(prefix="mirrorci-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return Path(name)


def describe(exc: BaseException) -> str:
    """The log's text: what ran, when, and the traceback, with every registered secret hidden."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    lines = [
        f"mirrorci {__version__}, Python {platform.python_version()} on {platform.platform()}, {stamp}",
        "",
        *traceback.format_exception(type(exc), exc, exc.__traceback__),
    ]
    return log.redact("\n".join(line.rstrip("\n") for line in lines) + "\n")


def save(exc: BaseException, env: Mapping[str, str] | None = None) -> Path | None:
    """Write the traceback of ``exc`` to the first writable place; None when nowhere is."""
    text = describe(exc)
    for directory in _directories(os.environ if env is None else env):
        try:
            path = directory / LOG_NAME
            _write(path, text)
            return path
        except OSError:
            continue
    try:
        return _write_temporary(text)
    except OSError:
        return None


def report(exc: BaseException, env: Mapping[str, str] | None = None) -> str:
    """The one error line for an unexpected ``exc``, naming the file that keeps its traceback."""
    path = save(exc, env)
    where = f"traceback in {path}" if path else "set MIRRORCI_DEBUG=1 for a traceback"
    message = " ".join(str(exc).split())  # one line, whatever the exception holds
    return f"unexpected {type(exc).__name__}: {message} ({where})"
