"""Fixture makers the conftest files share.

A test server is slow to start and cheap to reset: it starts once per session, and each
test that asks for it gets it reset, so tests stay independent of each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import pytest


class Resettable(Protocol):
    def reset(self) -> None: ...


S = TypeVar("S", bound=Resettable)


def shared_server(name: str, start: Callable[[pytest.TempPathFactory], AbstractContextManager[S]],
                  doc: str) -> tuple[Any, Any]:
    """Two fixtures: ``_<name>_session`` runs ``start(tmp_path_factory)`` for the session, ``<name>`` resets it.

    Bind both in a conftest (``_x_session, x = shared_server("x", ...)``): pytest finds fixtures by attribute.
    """
    session_name = f"_{name}_session"

    def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S]:
        with start(tmp_path_factory) as server:
            yield server

    def fresh(request: pytest.FixtureRequest) -> S:
        server: S = request.getfixturevalue(session_name)
        server.reset()
        return server

    fresh.__doc__ = doc
    return pytest.fixture(scope="session", name=session_name)(started), pytest.fixture(name=name)(fresh)
