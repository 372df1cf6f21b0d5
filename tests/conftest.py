"""Shared fixtures: sample repos plus real git, HTTP and S3 servers on 127.0.0.1.

Servers are session-scoped (start once, keep the suite fast); the public
fixtures reset their state before each test so tests stay independent.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fixtures import shared_server
from tests.support.git_servers import GitDaemon, GitHttpServer
from tests.support.repos import make_bare_origin, make_sample_repo
from tests.support.s3_server import MotoServer
from tests.support.static_server import StaticServer


@pytest.fixture(scope="session", autouse=True)
def _git_test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Isolate git from the developer's config and prompts; give it a fixed identity."""
    global_cfg = tmp_path_factory.mktemp("gitconfig") / "gitconfig"
    global_cfg.write_text("")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GIT_CONFIG_GLOBAL", str(global_cfg))
        mp.setenv("GIT_TERMINAL_PROMPT", "0")
        mp.setenv("GIT_AUTHOR_NAME", "Mirror Tester")
        mp.setenv("GIT_AUTHOR_EMAIL", "tester@example.invalid")
        mp.setenv("GIT_COMMITTER_NAME", "Mirror Tester")
        mp.setenv("GIT_COMMITTER_EMAIL", "tester@example.invalid")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="session")
def sample_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deterministic sample work tree, built once per session. Treat as read-only."""
    return make_sample_repo(tmp_path_factory.mktemp("sample") / "sample")


@pytest.fixture(scope="session")
def _origin_template(sample_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bare_origin(sample_repo, tmp_path_factory.mktemp("origin-template"))


@pytest.fixture
def origin_bare(_origin_template: Path, tmp_path: Path) -> Path:
    """A fresh, writable bare origin (copy of the sample) for this test only."""
    dest = tmp_path / "origin-root" / "origin.git"
    shutil.copytree(_origin_template, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def git_serve_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory whose bare repos are served by ``git_daemon`` and ``git_http``."""
    return tmp_path_factory.mktemp("git-served")


@pytest.fixture(scope="session")
def git_daemon(git_serve_root: Path) -> Iterator[GitDaemon]:
    with GitDaemon(git_serve_root) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def _git_http_session(git_serve_root: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(git_serve_root) as server:
        yield server


@pytest.fixture
def git_http(_git_http_session: GitHttpServer) -> GitHttpServer:
    """Session git smart-HTTP server with its request log cleared for this test."""
    _git_http_session.reset()
    return _git_http_session


@dataclass(frozen=True)
class ServedOrigin:
    """A per-test bare origin reachable over git:// and http://."""

    name: str
    path: Path
    git_url: str
    http_url: str


@pytest.fixture
def served_origin(request: pytest.FixtureRequest, _origin_template: Path, git_serve_root: Path,
                  git_daemon: GitDaemon, git_http: GitHttpServer) -> ServedOrigin:
    """Copy of the sample origin under the served root with a unique name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:40].strip("-.")
    name = f"{stem}-{uuid.uuid4().hex[:8]}.git"
    path = git_serve_root / name
    shutil.copytree(_origin_template, path, symlinks=True)
    return ServedOrigin(name, path, git_daemon.url_for(name), git_http.url_for(name))


_static_server_session, static_server = shared_server(
    "static_server", lambda factory: StaticServer(factory.mktemp("static")),
    "Session static file server (files under ``.root``), faults/counters reset.")

_moto_session, moto = shared_server("moto", lambda _: MotoServer(), "Session moto S3 server, emptied before this test.")
