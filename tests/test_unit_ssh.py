"""The ssh key's life (written 0600, used by origin's calls only, removed), the ssh commands, the owner/name URL.

What a real sshd sees is in test_e2e_ssh.py; these need no server.
"""

from __future__ import annotations

import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from mirrorci import ssh
from mirrorci.deadline import Deadline
from mirrorci.errors import SourceFailed, UsageError
from mirrorci.gitcmd import Git
from mirrorci.mirrorlist import MirrorSet
from mirrorci.sources.base import FetchContext
from mirrorci.sources.git_mirror import GitMirrorSource, check_url
from tests.support.ports import free_port
from tests.support.repos import git

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen is not installed (openssh-client)")


def new_key(tmp_path: Path, passphrase: str = "") -> str:
    path = tmp_path / f"id-{len(list(tmp_path.iterdir()))}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return path.read_text()


def command_words(env: dict[str, str]) -> list[str]:
    return shlex.split(env["GIT_SSH_COMMAND"])


def option_value(words: list[str], flag: str) -> str:
    return words[words.index(flag) + 1]


@pytest.fixture
def runner_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runner-temp"
    path.mkdir()
    monkeypatch.setenv("RUNNER_TEMP", str(path))
    return path


# --- owner/name over ssh -------------------------------------------------------------------------


@pytest.mark.parametrize(("repository", "server", "user", "expected"), [
    ("octo/hello", "https://github.com", "git", "git@github.com:octo/hello.git"),
    ("octo/hello", "", "", "git@github.com:octo/hello.git"),
    ("octo/hello", "https://ghes.example:8443/", "deploy", "deploy@ghes.example:octo/hello.git"),
    ("o c/ñ", "https://github.com", "git", "git@github.com:o%20c/%C3%B1.git"),
    ("octo/it's(1)", "https://github.com", "git", "git@github.com:octo/it's(1).git"),
    ("group/sub/project", "https://gitlab.example", "git", "git@gitlab.example:group/sub/project.git"),
])
def test_repository_url_is_what_actions_checkout_fetches_with_a_key(repository, server, user, expected):
    assert ssh.repository_url(repository, server, user) == expected


@pytest.mark.parametrize(("repository", "user", "fragment"), [
    ("octo", "git", "owner/name"),
    ("octo//hello", "git", "owner/name"),
    ("/hello", "git", "owner/name"),
    ("octo/", "git", "owner/name"),
    ("octo/hello", "-oProxyCommand=x", "--ssh-user"),
    ("octo/hello", "a@b", "--ssh-user"),
    ("octo/hello", "a b", "--ssh-user"),
])
def test_repository_url_refuses_what_is_not_owner_name_or_a_user(repository, user, fragment):
    with pytest.raises(UsageError, match=fragment):
        ssh.repository_url(repository, "https://github.com", user)


# --- the commands ---------------------------------------------------------------------------------


def test_strict_checks_the_host_key_against_the_given_file_only():
    words = shlex.split(ssh.ssh_command("'/k'", "'/kh'", strict=True))
    assert words[:3] == ["ssh", "-i", "/k"]
    for option in ("IdentitiesOnly=yes", "UserKnownHostsFile=/kh", "StrictHostKeyChecking=yes", "CheckHostIP=no",
                   "BatchMode=yes", f"ConnectTimeout={ssh.CONNECT_TIMEOUT}"):
        assert option in words


def test_not_strict_accepts_any_host_key_but_never_prompts():
    words = shlex.split(ssh.ssh_command("'/k'", "'/kh'", strict=False))
    assert "StrictHostKeyChecking=no" in words and "StrictHostKeyChecking=yes" not in words
    assert "BatchMode=yes" in words


def test_a_mirror_gets_no_key_and_only_hosts_the_runner_already_knows():
    env = ssh.mirror_env()
    words = command_words(env)
    assert "-i" not in words and not any(w.startswith(("IdentityFile", "UserKnownHostsFile")) for w in words)
    assert "StrictHostKeyChecking=yes" in words and "BatchMode=yes" in words
    assert env["GIT_SSH_VARIANT"] == "ssh"


# --- session: the key exists only while the checkout runs -----------------------------------------


def test_session_writes_a_private_key_and_removes_it(tmp_path, runner_temp):
    key = new_key(tmp_path)
    opts = ssh.SshOptions(key="\r\n".join(key.strip().splitlines()), known_hosts="[h]:2222 ssh-ed25519 AAAAx\n")
    with ssh.session(opts) as env:
        words = command_words(env)
        key_file = Path(option_value(words, "-i"))
        known = Path(next(w for w in words if w.startswith("UserKnownHostsFile=")).split("=", 1)[1])
        assert key_file.parent.parent == runner_temp
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
        assert key_file.read_text() == key.strip() + "\n"  # CRLF from a pasted secret is undone
        assert "[h]:2222 ssh-ed25519 AAAAx" in known.read_text().splitlines()
        assert ssh.GITHUB_KNOWN_HOSTS in known.read_text().splitlines()
        assert "StrictHostKeyChecking=yes" in words and env["GIT_SSH_VARIANT"] == "ssh"
    assert not key_file.exists() and not known.exists()
    assert list(runner_temp.iterdir()) == []


def test_session_removes_the_key_when_the_checkout_fails(tmp_path, runner_temp):
    with pytest.raises(RuntimeError):
        with ssh.session(ssh.SshOptions(key=new_key(tmp_path))) as env:
            key_file = Path(option_value(command_words(env), "-i"))
            assert key_file.exists()
            raise RuntimeError("the checkout failed")
    assert not key_file.exists()
    assert list(runner_temp.iterdir()) == []


def test_known_hosts_starts_with_the_users_own(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("mine.example ssh-ed25519 AAAAmine\n")
    monkeypatch.setenv("HOME", str(home))
    lines = ssh.known_hosts_text("given.example ssh-ed25519 AAAAgiven").splitlines()
    assert lines == ["mine.example ssh-ed25519 AAAAmine", "given.example ssh-ed25519 AAAAgiven", ssh.GITHUB_KNOWN_HOSTS]


@pytest.mark.parametrize("kind", ["not a key", "passphrase"])
def test_an_unusable_key_is_a_usage_error_that_does_not_show_it(tmp_path, runner_temp, kind):
    key = new_key(tmp_path, "correct horse") if kind == "passphrase" else "-----BEGIN NONSENSE-----\nabc\n"
    with pytest.raises(UsageError, match="ssh-key") as caught:
        with ssh.session(ssh.SshOptions(key=key)):
            pytest.fail("a session started with an unusable key")
    assert key.strip().splitlines()[1] not in str(caught.value)
    assert "\n" not in str(caught.value)
    assert list(runner_temp.iterdir()) == []


def test_without_a_key_ssh_never_prompts(monkeypatch):
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    with ssh.session(ssh.SshOptions()) as env:
        words = command_words(env)
    assert words[0] == "ssh" and "BatchMode=yes" in words and "-i" not in words


@pytest.mark.parametrize("how", ["GIT_SSH_COMMAND", "GIT_SSH", "core.sshCommand"])
def test_without_a_key_the_runners_own_ssh_command_is_kept(monkeypatch, tmp_path, how):
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    if how == "core.sshCommand":
        config = tmp_path / "gitconfig"
        config.write_text("[core]\n\tsshCommand = ssh -i /runner/key\n")
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    else:
        monkeypatch.setenv(how, "ssh -i /runner/key")
    with ssh.session(ssh.SshOptions()) as env:
        assert env == {}


# --- persist-credentials ---------------------------------------------------------------------------


def clone(tmp_path: Path) -> Git:
    path = tmp_path / "clone"
    git(tmp_path, "init", "-q", str(path))
    return Git(path)


def test_persist_keeps_the_key_under_runner_temp_for_later_commands(tmp_path, runner_temp):
    repo = clone(tmp_path)
    key = new_key(tmp_path)
    config = Path(ssh.persist(repo, ssh.SshOptions(key=key)) or "")
    assert config.parent == runner_temp and config.name.startswith(ssh.CREDENTIALS_PREFIX)
    assert str(config) in repo.out("config", "--get-all", "include.path").splitlines()
    key_file = Path(str(config).removesuffix(".config") + ".key")
    assert key_file.read_text() == key.strip() + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    command = repo.out("config", "core.sshCommand")
    assert f'"$RUNNER_TEMP/{key_file.name}"' in command  # also right in a job container
    assert key.strip().splitlines()[1] not in (repo.cwd / ".git" / "config").read_text()


def test_persist_without_runner_temp_keeps_the_key_beside_the_config(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNNER_TEMP", raising=False)
    repo = clone(tmp_path)
    config = Path(ssh.persist(repo, ssh.SshOptions(key=new_key(tmp_path), strict=False)) or "")
    assert config.parent == repo.cwd / ".git"
    words = shlex.split(repo.out("config", "core.sshCommand"))
    assert Path(option_value(words, "-i")) == Path(str(config).removesuffix(".config") + ".key")
    assert "StrictHostKeyChecking=no" in words


def test_persist_without_a_key_writes_nothing(tmp_path):
    repo = clone(tmp_path)
    assert ssh.persist(repo, ssh.SshOptions()) is None
    assert repo.run("config", "core.sshCommand", check=False).returncode == 1


# --- git mirrors never use origin's ssh -------------------------------------------------------------


@pytest.mark.parametrize("url", ["git@127.0.0.1:owner/repo.git", "127.0.0.1:/srv/repo.git", "mirror:repo.git"])
def test_scp_like_mirror_urls_are_refused(url):
    with pytest.raises(SourceFailed):
        check_url(url, allow_file_urls=False)


def test_an_ssh_git_mirror_ignores_the_ssh_command_in_the_environment(tmp_path, monkeypatch):
    """A runner may hold origin's key in GIT_SSH_COMMAND: origin's calls use it, a mirror's fetch must not."""
    marker = tmp_path / "used"
    (tmp_path / "origin").mkdir()
    fake = tmp_path / "origin" / "ssh"  # named ssh: git passes OpenSSH's options to it without probing
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {shlex.quote(str(marker))}\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake))
    url = f"ssh://git@127.0.0.1:{free_port()}/repo.git"  # nothing listens: the real ssh fails at once
    Git(None).run("ls-remote", url, check=False)
    assert marker.exists(), "the ssh command in the environment is not what origin's calls use"
    marker.unlink()

    repo = clone(tmp_path)
    ctx = FetchContext(git=repo, repo_dir=repo.cwd, mirrors=MirrorSet(git_mirrors=[url]), deadline=Deadline(60, 30))
    with pytest.raises(SourceFailed, match="127.0.0.1"):
        GitMirrorSource().fetch(ctx)
    assert not marker.exists()
