"""Credentials for origin: given to git for origin's URL only, never on a command line.

Like actions/checkout, a token becomes an `http.<scheme://host/>.extraHeader`
passed through GIT_CONFIG_* environment variables, so it is scoped to origin's
host, invisible in process listings, and absent from every call to a mirror.
"""

from __future__ import annotations

import base64
import os
from urllib.parse import urlsplit

from . import log

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
    env = dict(base if base is not None else os.environ)
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


def persist(config_writer: object, url: str, token: str, user: str = DEFAULT_TOKEN_USER) -> None:
    """Leave the credential in the clone's config, as actions/checkout's persist-credentials does."""
    prefix = url_prefix(url)
    if prefix:
        config_writer.set_value(f'http "{prefix}"', "extraheader", auth_header(token, user))  # type: ignore[attr-defined]
