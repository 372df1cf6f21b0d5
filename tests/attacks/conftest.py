"""Fixtures of the attack suite: a hostile mirror host, a port that never answers, an origin that wants a token."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.attacks.helpers import Legit, legit_bundle
from tests.support import forge
from tests.support.fixtures import shared_server
from tests.support.git_servers import GitHttpServer, _CgiHandler
from tests.support.hostile_server import HostileServer, SilentListener

_hostile_session, hostile = shared_server(
    "hostile", lambda _: HostileServer(), "The attacker's HTTP mirror host, with no routes and an empty request log.")


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    """A port that accepts connections and never answers."""
    with SilentListener() as listener:
        yield listener


@pytest.fixture(scope="session")
def legit(_origin_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Legit:
    """The sample origin's honest bundle and pack index, as `mirrorci publish` would upload them.

    Every ``served_origin`` is a copy of the same template, so one bundle fits them all.
    """
    return legit_bundle(_origin_template, tmp_path_factory.mktemp("legit"))


FORGERS: dict[str, Callable[[Path, Path], forge.Forgery]] = {
    "subtree": forge.forge_head_tree,  # the case: git itself never rehashes a subtree or a blob
    "root-tree": lambda origin, workdir: forge.forge_head_tree(origin, workdir, "", "README.md"),
    "commit": forge.forge_head_commit,
    "old-blob": forge.forge_old_blob,
}


@pytest.fixture(scope="session")
def forgeries(_origin_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], forge.Forgery]:
    """Forged bundles of the sample origin by kind (see FORGERS), each built once and proven to fool git."""
    made: dict[str, forge.Forgery] = {}

    def get(kind: str) -> forge.Forgery:
        if kind not in made:
            workdir = tmp_path_factory.mktemp(f"forge-{kind}")
            forgery = FORGERS[kind](_origin_template, workdir)
            forge.assert_forgery_works(forgery, workdir)
            made[kind] = forgery
        return made[kind]

    return get


class _TokenHandler(_CgiHandler):
    """Refuses protected repositories (401) unless the request carries the expected Authorization header."""

    def _run_backend(self) -> None:
        owner: TokenGitHttpServer = self.server.owner
        repo = self.path.lstrip("/").split("/", 1)[0]
        if repo in owner.protected and self.headers.get("Authorization") != owner.authorization:
            owner._record(self.command, self.path, False, dict(self.headers.items()))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="origin"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super()._run_backend()


class TokenGitHttpServer(GitHttpServer):
    """Smart HTTP where origin wants a token and a mirror on the same host:port is public."""

    handler = _TokenHandler
    token_user = "x-access-token"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.token = "tok-" + uuid.uuid4().hex
        self.protected: set[str] = set()

    @property
    def authorization(self) -> str:
        return "basic " + base64.b64encode(f"{self.token_user}:{self.token}".encode()).decode()

    def reset(self) -> None:
        super().reset()
        self.protected.clear()


_token_http_session, token_http = shared_server(
    "token_http", lambda factory: TokenGitHttpServer(factory.mktemp("token-served")),
    "Smart HTTP with a token-protected origin; nothing protected yet, an empty request log.")
