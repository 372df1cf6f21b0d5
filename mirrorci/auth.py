"""Credentials for origin: given to git for origin's URL only, never on a command line.

Like actions/checkout, a token becomes an `http.<scheme://host/>.extraHeader`
passed through GIT_CONFIG_* environment variables, so it is scoped to origin's
host, invisible in process listings, and absent from every call to a mirror.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from . import environment, log
from .errors import MirrorciError
from .gitcmd import Git

DEFAULT_TOKEN_USER = "x-access-token"


def url_prefix(url: str) -> str | None:
    """`https://host[:port]/` for http(s) URLs: the scope git matches extraHeader against."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/"


def auth_header(token: str, user: str = DEFAULT_TOKEN_USER) -> str:
    encoded = base64.b64encode(f"{user}:{token}".encode()).decode()
    log.mask(token)
    log.mask(encoded)
    return f"Authorization: basic {encoded}"


def config_env(pairs: dict[str, str], base: dict[str, str] | None = None) -> dict[str, str]:
    """GIT_CONFIG_COUNT/KEY_n/VALUE_n entries, appended after any the environment already has."""
    env = dict(base if base is not None else environment.current())
    start = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    out: dict[str, str] = {}
    for i, (key, value) in enumerate(pairs.items(), start):
        out[f"GIT_CONFIG_KEY_{i}"] = key
        out[f"GIT_CONFIG_VALUE_{i}"] = value
    if pairs:
        out["GIT_CONFIG_COUNT"] = str(start + len(pairs))
    return out


def origin_env(url: str, token: str | None, user: str = DEFAULT_TOKEN_USER) -> dict[str, str]:
    """Environment for git calls that talk to origin (and only to origin)."""
    prefix = url_prefix(url)
    if not token or not prefix:
        return {}
    return config_env({f"http.{prefix}.extraHeader": auth_header(token, user)})


def persist(git: Git, url: str, token: str, user: str = DEFAULT_TOKEN_USER) -> str | None:
    """Leave the credential to the clone, as actions/checkout's persist-credentials does (v6 and later).

    The header goes into a file of its own (mode 0600) that the clone's config includes,
    never into `.git/config` itself: under RUNNER_TEMP on a CI runner, which the runner
    wipes when the job ends, else beside the config. Returns the file's path.
    """
    prefix = url_prefix(url)
    if not prefix:
        return None
    text = f'[http "{prefix}"]\n\textraheader = {auth_header(token, user)}\n'
    candidates = [Path(os.environ["RUNNER_TEMP"])] if os.environ.get("RUNNER_TEMP") else []
    candidates.append(git.git_path("."))
    for directory in candidates:
        path = directory / f"mirrorci-credentials-{secrets.token_hex(6)}.config"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(text)
        git.run("config", "--add", "include.path", str(path))
        return str(path)
    raise MirrorciError("cannot write the credentials file for --persist-credentials")
