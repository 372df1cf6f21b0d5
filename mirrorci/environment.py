"""The environment mirrorci reads its secrets from and starts git with.

By default that is the process's own. A caller that holds secrets of its own (the
CI entry point, with a job's token or ssh key from its inputs) hands them in with
`using(env)` instead of writing them into `os.environ`, where every other
library and child process of the job would see them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_handed_in: Mapping[str, str] | None = None


def current() -> Mapping[str, str]:
    """What mirrorci reads variables from: the environment handed in, else the process's."""
    return _handed_in if _handed_in is not None else os.environ


def get(name: str, default: str = "") -> str:
    return current().get(name, default)


@contextmanager
def using(env: Mapping[str, str] | None) -> Iterator[None]:
    """Read variables from `env` (and start git with it) for the duration; None keeps the process's."""
    global _handed_in
    saved = _handed_in
    if env is not None:
        _handed_in = dict(env)
    try:
        yield
    finally:
        _handed_in = saved
