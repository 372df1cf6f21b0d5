"""End to end: an ssh origin served by a real sshd on 127.0.0.1, as actions/checkout's ssh-key inputs reach it.

The key is given the way the CLI takes it (MIRRORCI_SSH_KEY), the host key with
--ssh-known-hosts. A checkout equals git clone's; a wrong host key fails with one
line and never hangs; the key is never printed and is gone after the checkout,
unless --persist-credentials keeps it for later commands until the post step. A
git mirror on another sshd, which would accept the same key, is never offered it.
Skipped, with the reason, where sshd cannot start.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import CliResult, run_cli
from tests.support.repos import advance_origin, fsck_ok, git, repo_snapshot
from tests.support.sshd import SshdUnavailable, SshServer, fingerprint, keygen

POST = Path(__file__).resolve().parents[1] / "checkout" / "dist" / "post.js"


def start(root: Path) -> SshServer:
    if not shutil.which("ssh"):
        pytest.skip("no ssh client for the ssh tests (Debian package openssh-client)")
    try:
        return SshServer(root).__enter__()
    except SshdUnavailable as exc:
        pytest.skip(f"no sshd for the ssh tests: {exc}")


@pytest.fixture(scope="module")
def origin_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = start(tmp_path_factory.mktemp("sshd-origin"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mirror_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = start(tmp_path_factory.mktemp("sshd-mirror"))
    yield server
    server.stop()


class Client:
    """A deploy key the servers accept, and what a job around the checkout has."""

    def __init__(self, tmp_path: Path, *servers: SshServer) -> None:
        self.key_file = tmp_path / "deploy-key"
        self.public = keygen(self.key_file)
        self.private = self.key_file.read_text()
        for server in servers:
            server.authorize(self.public)
        self.fingerprint = fingerprint(self.public)
        self.runner_temp = tmp_path / "runner-temp"
        self.runner_temp.mkdir()

    def env(self, with_key: bool = True) -> dict[str, str]:
        env = {"RUNNER_TEMP": str(self.runner_temp)}
        if with_key:
            env["MIRRORCI_SSH_KEY"] = self.private
        return env

    def own_ssh(self, known_hosts: Path) -> str:
        """An ssh command with this key, as a runner's own setup (or a plain git clone) has it."""
        return (f"ssh -i {shlex.quote(str(self.key_file))} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))} -o StrictHostKeyChecking=yes")

    def assert_never_shown(self, *outputs: str) -> None:
        body = [line for line in self.private.splitlines() if line and not line.startswith("-----")]
        assert body
        for text in outputs:
            assert not any(line in text for line in body), "the private key was printed"


@pytest.fixture(autouse=True)
def _no_runner_ssh_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def known_hosts_file(tmp_path: Path, *servers: SshServer) -> Path:
    path = tmp_path / f"known_hosts-{uuid.uuid4().hex[:6]}"
    path.write_text("".join(s.known_hosts_line() + "\n" for s in servers))
    return path


def checkout(url: str, dest: Path, *extra: str, env: dict[str, str], expect: int | None = 0) -> CliResult:
    return run_cli("checkout", url, "--path", dest, "--json", *extra, env=env, expect=expect)


def assert_same_as_git_clone(ours: Path, url: str, client: Client, known_hosts: Path, tmp_path: Path) -> None:
    theirs = tmp_path / f"git-clone-{uuid.uuid4().hex[:6]}"
    git(tmp_path, "clone", "-q", url, str(theirs), env={"GIT_SSH_COMMAND": client.own_ssh(known_hosts)})
    assert repo_snapshot(ours) == repo_snapshot(theirs)
    assert fsck_ok(ours)


def files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_a_checkout_with_ssh_key_and_known_hosts_equals_git_clone(origin_sshd, origin_bare, tmp_path):
    client = Client(tmp_path, origin_sshd)
    url = origin_sshd.url_for(origin_bare)
    dest = tmp_path / "co"

    out = checkout(url, dest, "--ssh-known-hosts", origin_sshd.known_hosts_line(), env=client.env())

    assert out.json["method"] == "origin"
    assert out.json["credentials_file"] is None
    assert_same_as_git_clone(dest, url, client, known_hosts_file(tmp_path, origin_sshd), tmp_path)
    assert client.fingerprint in origin_sshd.keys_offered()  # the key did the work, not some other identity
    client.assert_never_shown(out.stdout, out.stderr, json.dumps(out.json))
    assert list(client.runner_temp.iterdir()) == []  # the key file and its directory are gone
    assert git(dest, "config", "--get", "core.sshCommand", check=False) == ""
    assert files_holding(dest, client.private.splitlines()[1]) == []


def test_a_host_key_that_does_not_match_fails_at_once_with_one_line(origin_sshd, origin_bare, tmp_path):
    client = Client(tmp_path, origin_sshd)
    impostor = keygen(tmp_path / "impostor-host-key").split()
    wrong = f"[127.0.0.1]:{origin_sshd.port} {impostor[0]} {impostor[1]}"
    dest = tmp_path / "co"
    before = origin_sshd.keys_offered()

    out = checkout(origin_sshd.url_for(origin_bare), dest, "--ssh-known-hosts", wrong, env=client.env(), expect=1)

    errors = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, out.stderr
    assert "host key" in errors[0].lower() and "Host key verification failed" in errors[0]
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert origin_sshd.keys_offered() == before  # ssh stopped before offering the key to a host it could not trust
    assert not dest.exists()
    assert list(client.runner_temp.iterdir()) == []
    client.assert_never_shown(out.stdout, out.stderr)


def test_without_ssh_strict_any_host_key_is_accepted(origin_sshd, origin_bare, tmp_path):
    client = Client(tmp_path, origin_sshd)
    impostor = keygen(tmp_path / "impostor-host-key").split()
    wrong = f"[127.0.0.1]:{origin_sshd.port} {impostor[0]} {impostor[1]}"
    url = origin_sshd.url_for(origin_bare)

    out = checkout(url, tmp_path / "co", "--ssh-known-hosts", wrong, "--no-ssh-strict", env=client.env())

    assert out.json["method"] == "origin"
    assert_same_as_git_clone(tmp_path / "co", url, client, known_hosts_file(tmp_path, origin_sshd), tmp_path)
    client.assert_never_shown(out.stdout, out.stderr)
    assert list(client.runner_temp.iterdir()) == []


def test_without_a_key_ssh_fails_instead_of_prompting(origin_sshd, origin_bare, tmp_path):
    """No ssh-key: the runner's own ssh, which does not know this host; BatchMode makes that an error, not a prompt."""
    client = Client(tmp_path, origin_sshd)

    out = checkout(origin_sshd.url_for(origin_bare), tmp_path / "co", env=client.env(with_key=False), expect=1)

    errors = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Host key verification failed" in errors[0], out.stderr


def test_persisted_key_serves_later_fetches_until_the_post_step(origin_sshd, origin_bare, tmp_path):
    client = Client(tmp_path, origin_sshd)
    dest = tmp_path / "co"
    out = checkout(origin_sshd.url_for(origin_bare), dest, "--ssh-known-hosts", origin_sshd.known_hosts_line(),
                   "--persist-credentials", env=client.env())
    config = Path(out.json["credentials_file"])
    kept = sorted(p.name for p in client.runner_temp.iterdir())
    assert kept == sorted(config.name.removesuffix(".config") + s for s in (".config", ".key", ".known_hosts"))
    client.assert_never_shown(out.stdout, out.stderr)
    assert client.private.splitlines()[1] not in (dest / ".git" / "config").read_text()

    advance_origin(origin_bare, tmp_path / "advance")
    git(dest, "fetch", "-q", "origin", env={"RUNNER_TEMP": str(client.runner_temp)})  # core.sshCommand from the include
    assert git(dest, "rev-parse", "origin/main") == git(origin_bare, "rev-parse", "main")

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the post step cannot run")
    post = subprocess.run([node, str(POST)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "STATE_repository_path": str(dest)})
    assert post.returncode == 0 and "::warning::" not in post.stdout, post.stdout + post.stderr
    assert list(client.runner_temp.iterdir()) == []  # the key and known_hosts went with the credentials file
    assert git(dest, "config", "--get", "core.sshCommand", check=False) == ""


def advertise_git_mirror(origin: Path, url: str) -> None:
    """What `publish --git-mirror URL` leaves on origin: refs/mirrors/fetch/git pointing at a blob of URLs."""
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=origin, input=url + "\n", text=True,
                          capture_output=True, check=True).stdout.strip()
    git(origin, "update-ref", "refs/mirrors/fetch/git", blob)


def mirror_of(origin: Path, tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--mirror", str(origin), str(mirror))
    return mirror


@pytest.mark.parametrize("how", ["ssh-key", "runner GIT_SSH_COMMAND"])
def test_an_ssh_git_mirror_is_never_offered_origins_key(origin_sshd, mirror_sshd, origin_bare, tmp_path, how):
    """The mirror's sshd accepts the key and both host keys are in origin's known_hosts: only
    keeping origin's ssh command away from the mirror's fetch makes that mirror unusable."""
    client = Client(tmp_path, origin_sshd, mirror_sshd)
    advertise_git_mirror(origin_bare, mirror_sshd.url_for(mirror_of(origin_bare, tmp_path)))
    both = known_hosts_file(tmp_path, origin_sshd, mirror_sshd)
    url = origin_sshd.url_for(origin_bare)
    if how == "ssh-key":
        env = client.env()
        extra = ["--ssh-known-hosts", both.read_text()]
    else:  # no ssh-key input: the runner's own setup names the key, for origin
        env = {**client.env(with_key=False), "GIT_SSH_COMMAND": client.own_ssh(both)}
        extra = []
    offered_before = mirror_sshd.keys_offered()

    out = checkout(url, tmp_path / "co", "--prefer", "git", *extra, env=env)

    assert out.json["method"] == "origin", out.json["fallbacks"]
    assert any(f["method"] == "git" for f in out.json["fallbacks"]), out.json["fallbacks"]
    assert mirror_sshd.keys_offered() == offered_before
    assert client.fingerprint in origin_sshd.keys_offered()
    assert_same_as_git_clone(tmp_path / "co", url, client, both, tmp_path)
    client.assert_never_shown(out.stdout, out.stderr)


def test_an_scp_like_git_mirror_is_refused_without_connecting(origin_sshd, mirror_sshd, origin_bare, tmp_path):
    client = Client(tmp_path, origin_sshd, mirror_sshd)
    advertise_git_mirror(origin_bare, mirror_sshd.scp_url_for(mirror_of(origin_bare, tmp_path)))
    connections = mirror_sshd.connections()

    out = checkout(origin_sshd.url_for(origin_bare), tmp_path / "co", "--prefer", "git",
                   "--ssh-known-hosts", origin_sshd.known_hosts_line(), env=client.env())

    assert out.json["method"] == "origin"
    assert mirror_sshd.connections() == connections
