"""SSH origins: the private key, known hosts and strictness actions/checkout takes as inputs.

The key is origin's credential like the token. It is written to a 0600 file in a
private directory (under RUNNER_TEMP on a CI runner) only for the checkout's own
git calls to origin, named by GIT_SSH_COMMAND in the environment those calls get
(`session()`), and removed when the checkout ends, also on failure or SIGTERM.
With --persist-credentials a second copy stays for the job's later git commands:
`core.sshCommand` in the credentials file the clone includes (`persist()`), which
the post step deletes together with the key.

Every ssh that mirrorci starts runs with BatchMode=yes (never a prompt, so never a
hang on a passphrase or an unknown host) and a connect timeout. Without a key, an
ssh origin uses the runner's own ssh setup, as actions/checkout does.

A git mirror reached over ssh is an untrusted host: its fetch gets `mirror_env()`,
an ssh command of its own that replaces whatever GIT_SSH_COMMAND or GIT_SSH the
environment holds (where an origin key may sit) and only talks to hosts already in
the runner's known_hosts. It never sees the key file, which no ssh finds by default.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from . import environment, log
from .errors import MirrorciError, UsageError
from .gitcmd import Git

CONNECT_TIMEOUT = 30  # seconds for the TCP connection and the ssh handshake
# Never prompt; give up on an unreachable host, and on a connection silent for a minute.
BATCH_OPTIONS = ("-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                 "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4")
# actions/checkout always trusts github.com's host key besides the user's known_hosts and its input.
GITHUB_KNOWN_HOSTS = (
    "github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlO"
    "hGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcY"
    "gXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOW"
    "RVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+Ej"
    "qoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk="
)
# The post step removes every include named like this, and the .key and .known_hosts beside it.
CREDENTIALS_PREFIX = "mirrorci-credentials-"
KEY_SOURCE = "the ssh key (ssh-key input, MIRRORCI_SSH_KEY)"


@dataclass
class SshOptions:
    key: str | None = None  # private key text (from MIRRORCI_SSH_KEY; never a command line)
    known_hosts: str = ""  # extra known_hosts lines
    strict: bool = True  # StrictHostKeyChecking
    user: str = "git"  # user for owner/name repositories reached over ssh


def repository_url(repository: str, server_url: str, user: str) -> str:
    """`<user>@<host>:<owner>/<name>.git`: where actions/checkout fetches owner/name from when given an ssh key.

    The host is the server URL's host name (its port, if any, is not part of an scp-like URL).
    A GitLab project in nested groups (group/subgroup/name) keeps every segment.
    """
    segments = repository.strip().removesuffix(".git").split("/")
    if len(segments) < 2 or not all(segment.strip() for segment in segments):
        raise UsageError(f"repository {repository!r}: give it as owner/name")
    host = urlsplit(server_url.strip() or "https://github.com").hostname
    if not host:
        raise UsageError(f"server URL {server_url!r} has no host name")
    user = user.strip() or "git"
    if user.startswith("-") or any(c in user for c in "@:/\\") or any(c.isspace() or ord(c) < 0x20 for c in user):
        raise UsageError(f"--ssh-user {user!r}: give a plain user name (no '@', ':', '/' or spaces)")
    safe = "!~*'()"  # what encodeURIComponent leaves alone, as actions/checkout encodes owner and name
    return f"{user}@{host}:{'/'.join(quote(segment, safe=safe) for segment in segments)}.git"


def ssh_command(key: str | None = None, known_hosts: str | None = None, strict: bool = True) -> str:
    """The GIT_SSH_COMMAND (or core.sshCommand) text; `key` and `known_hosts` are already shell-quoted."""
    words = ["ssh"]
    if key:
        words += ["-i", key, "-o", "IdentitiesOnly=yes"]
        if known_hosts:
            words += ["-o", f"UserKnownHostsFile={known_hosts}"]
        words += ["-o", "StrictHostKeyChecking=yes", "-o", "CheckHostIP=no"] if strict else \
                 ["-o", "StrictHostKeyChecking=no"]
    return " ".join([*words, *BATCH_OPTIONS])


def mirror_env() -> dict[str, str]:
    """Environment for fetching from an ssh git mirror: ssh with the runner's defaults, never origin's key.

    It replaces GIT_SSH_COMMAND and GIT_SSH from the environment (which may name origin's key)
    and refuses a host whose key the runner's known_hosts does not hold, whatever ssh_config says.
    """
    return {"GIT_SSH_COMMAND": " ".join(["ssh", "-o", "StrictHostKeyChecking=yes", *BATCH_OPTIONS]),
            "GIT_SSH_VARIANT": "ssh"}


@contextmanager
def session(opts: SshOptions, temp_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """Environment for the checkout's git calls to origin; with a key, the key lives only while inside.

    Without a key: BatchMode for the runner's own ssh, unless the runner names its own ssh command
    (GIT_SSH_COMMAND, GIT_SSH or core.sshCommand), which is left as it is.
    """
    if not opts.key:
        yield {} if _runner_has_ssh_command() else {"GIT_SSH_COMMAND": ssh_command()}
        return
    _require_ssh()
    directory = Path(tempfile.mkdtemp(prefix="mirrorci-ssh-", dir=temp_dir or _runner_temp()))
    try:
        key, known_hosts = _write_files(directory / "key", directory / "known_hosts", opts)
        command = ssh_command(shlex.quote(str(key)), shlex.quote(str(known_hosts)), opts.strict)
        yield {"GIT_SSH_COMMAND": command, "GIT_SSH_VARIANT": "ssh"}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def persist(git: Git, opts: SshOptions) -> str | None:
    """Leave the key to the clone's later git commands, as actions/checkout's persist-credentials does.

    The key and a known_hosts file go under RUNNER_TEMP (which the runner wipes when the job
    ends), else beside the clone's config; core.sshCommand naming them goes into a credentials
    file the clone includes, never into `.git/config` itself. Returns that file's path.
    """
    if not opts.key:
        return None
    runner_temp = _runner_temp()
    candidates = [Path(runner_temp)] if runner_temp else []
    candidates.append(git.git_path("."))
    for directory in candidates:
        base = directory / f"{CREDENTIALS_PREFIX}{secrets.token_hex(6)}"
        config = Path(f"{base}.config")
        try:
            _create_private(config, "")
            key, known_hosts = _write_files(Path(f"{base}.key"), Path(f"{base}.known_hosts"), opts)
        except BaseException as exc:
            for suffix in (".config", ".key", ".known_hosts"):
                Path(f"{base}{suffix}").unlink(missing_ok=True)
            if isinstance(exc, OSError):
                continue  # an unwritable directory: the next one
            raise
        in_temp = runner_temp is not None and directory == Path(runner_temp)
        command = ssh_command(_shell_path(key, in_temp), _shell_path(known_hosts, in_temp), opts.strict)
        git.run("config", "--file", str(config), "core.sshCommand", command)
        git.run("config", "--add", "include.path", str(config))
        return str(config)
    raise MirrorciError("cannot write the ssh key for --persist-credentials")


def _runner_temp() -> str | None:
    path = environment.get("RUNNER_TEMP")
    return path if path and os.path.isdir(path) else None


def _shell_path(path: Path, in_runner_temp: bool) -> str:
    """As actions/checkout writes it: `"$RUNNER_TEMP/<name>"` also holds in a job container,
    where RUNNER_TEMP differs."""
    return f'"$RUNNER_TEMP/{path.name}"' if in_runner_temp else shlex.quote(str(path))


def _runner_has_ssh_command() -> bool:
    if environment.get("GIT_SSH_COMMAND") or environment.get("GIT_SSH"):
        return True
    # Global and system scopes only: whatever repository the current directory is in says nothing about origin.
    git = Git(None)
    return any(git.run("config", scope, "--get", "core.sshCommand", check=False).returncode == 0
               for scope in ("--global", "--system"))


def _require_ssh() -> None:
    if not shutil.which("ssh"):
        raise UsageError(f"{KEY_SOURCE} is given but there is no ssh client on PATH; install openssh-client")


def _write_files(key_path: Path, known_hosts_path: Path, opts: SshOptions) -> tuple[Path, Path]:
    """The key (0600, checked to be usable without a passphrase) and the known_hosts ssh checks origin against."""
    text = "\n".join(line.rstrip("\r") for line in (opts.key or "").strip().splitlines()) + "\n"
    _create_private(key_path, text)
    _check_key(key_path)
    _create_private(known_hosts_path, known_hosts_text(opts.known_hosts))
    return key_path, known_hosts_path


def known_hosts_text(extra: str) -> str:
    """Like actions/checkout: the user's known_hosts, then the given lines, then github.com's key."""
    parts = []
    user_file = Path.home() / ".ssh" / "known_hosts"
    try:
        parts.append(user_file.read_text(errors="replace").strip())
    except OSError:
        pass
    parts.append("\n".join(line.strip() for line in extra.splitlines() if line.strip()))
    parts.append(GITHUB_KNOWN_HOSTS)
    return "\n".join(part for part in parts if part) + "\n"


def _create_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _check_key(path: Path) -> None:
    """One clear line now instead of ssh's 'Permission denied' later: a key ssh cannot load without a prompt."""
    keygen = shutil.which("ssh-keygen")
    if not keygen:
        return
    proc = subprocess.run([keygen, "-y", "-P", "", "-f", str(path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["ssh-keygen cannot read it"])[-1].replace(str(path), "key")
        raise UsageError(f"{KEY_SOURCE} is not a private key ssh can use without a passphrase ({log.redact(reason)}); "
                         "give the whole unencrypted private key, BEGIN and END lines included")
