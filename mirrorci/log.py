"""Human-readable logging on stderr: plain in a terminal, grouped and masked in CI.

stdout is reserved for `--json` summaries, so everything here writes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

_secrets: set[str] = set()


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def on_gitlab() -> bool:
    return os.environ.get("GITLAB_CI") == "true"


def mask(secret: str | None) -> None:
    """Never print `secret` again; on GitHub also ask the runner to mask it."""
    if not secret or len(secret) < 3 or secret in _secrets:
        return
    _secrets.add(secret)
    if on_github():
        sys.stderr.write(f"::add-mask::{secret}\n")


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s]+)@")


def redact(text: str) -> str:
    """Hide registered secrets and any credentials embedded in URLs."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: no partial leaks
        text = text.replace(secret, "***")
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _write(line: str) -> None:
    sys.stderr.write(redact(line) + "\n")
    sys.stderr.flush()


def info(message: str) -> None:
    _write(message)


def warn(message: str) -> None:
    if on_github():
        _write(f"::warning::{_escape_data(message)}")
    else:
        _write(f"warning: {message}")


def error(message: str) -> None:
    if on_github():
        _write(f"::error::{_escape_data(message)}")
    else:
        _write(f"error: {message}")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible section in CI logs; a plain heading in a terminal."""
    start = time.monotonic()
    if on_github():
        _write(f"::group::{title}")
    elif on_gitlab():
        name = re.sub(r"[^a-z0-9_]", "_", title.lower())[:40]
        _write(f"\x1b[0Ksection_start:{int(time.time())}:{name}[collapsed=true]\r\x1b[0K{title}")
    else:
        info(f"== {title}")
    try:
        yield
    finally:
        if on_github():
            _write("::endgroup::")
        elif on_gitlab():
            name = re.sub(r"[^a-z0-9_]", "_", title.lower())[:40]
            _write(f"\x1b[0Ksection_end:{int(time.time())}:{name}\r\x1b[0K")
        else:
            info(f"   done in {time.monotonic() - start:.2f}s")


@contextlib.contextmanager
def step(key: str, timings: dict[str, float], title: str | None = None) -> Iterator[None]:
    """One timed step of a command: its seconds add up in `timings[key]` (also when it fails),
    and with a `title` it is a log group of its own.

    The JSON summaries report these timings; a step that runs more than once (a retried
    attempt) adds to the same key.
    """
    start = time.monotonic()
    try:
        with group(title) if title else contextlib.nullcontext():
            yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.monotonic() - start
