"""A real OpenSSH server on 127.0.0.1, serving git repositories over ssh, for tests.

Each server has its own directory: a host key made with ssh-keygen, an
authorized_keys file, a config file and a pid file; it listens on a free port
and logs verbosely to a file, so tests can see which keys were offered to it.
`git-upload-pack` runs as the user the tests run as (sshd started by root
accepts root with a key only: PermitRootLogin prohibit-password).

When sshd is missing or cannot start here, `SshdUnavailable` says why and tests
skip with that reason.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from .ports import free_port
from .processes import ServerProcess

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


class SshdUnavailable(RuntimeError):
    """sshd cannot run on this machine (not installed, no privilege separation directory, ...)."""


def find_sshd() -> str:
    for candidate in (*SSHD_CANDIDATES, shutil.which("sshd")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SshdUnavailable("sshd is not installed (Debian package openssh-server)")


def keygen(path: Path, comment: str = "mirrorci-test") -> str:
    """A new ed25519 key pair without passphrase at `path` and `path`.pub; returns the public key line."""
    if not shutil.which("ssh-keygen"):
        raise SshdUnavailable("ssh-keygen is not installed (Debian package openssh-client)")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def fingerprint(public_key: str) -> str:
    """`SHA256:...` of a public key line, as sshd logs it."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=public_key + "\n", capture_output=True,
                         text=True, check=True).stdout
    return out.split()[1]


def _privsep_dir() -> None:
    """sshd started by root needs its privilege separation directory (Debian: /run/sshd)."""
    if os.geteuid() != 0:
        return
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        raise SshdUnavailable(f"cannot create /run/sshd for sshd's privilege separation: {exc}") from None


class SshServer(ServerProcess):
    """`sshd -D` with its own config in `root`; stop() (or leaving the with block) ends it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        super().__init__("sshd", log_path=self.root / "sshd.log", grace=10)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.port = 0
        self.host_public_key = ""

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    def authorize(self, public_key: str) -> None:
        with self.authorized_keys.open("a") as f:
            f.write(public_key.strip() + "\n")

    def url_for(self, path: Path) -> str:
        """ssh:// URL of the repository at the absolute `path`."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{Path(path).absolute()}"

    def scp_url_for(self, path: Path) -> str:
        """The scp-like form (`user@host:path`), which cannot name a port: for refusal tests only."""
        return f"{self.user}@127.0.0.1:{Path(path).absolute()}"

    def known_hosts_line(self) -> str:
        """The known_hosts line for this server: `[127.0.0.1]:port <type> <key>`."""
        kind, key = self.host_public_key.split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}"

    def __enter__(self) -> SshServer:
        sshd = find_sshd()
        _privsep_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        host_key = self.root / "host_ed25519"
        self.host_public_key = keygen(host_key, "mirrorci-test-host")
        self.authorized_keys.touch()
        self.port = free_port()
        config = self._write_config(host_key)
        check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SshdUnavailable(f"sshd rejects its test configuration: {check.stderr.strip()}")
        # -D: stay in the foreground (a child we can stop); -e: log to stderr, i.e. the log file.
        self.start([sshd, "-D", "-e", "-f", str(config)], port=self.port, error=SshdUnavailable)
        return self

    def _write_config(self, host_key: Path) -> Path:
        config = self.root / "sshd_config"
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"PidFile {self.root / 'sshd.pid'}",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
            "PrintMotd no",
            "LogLevel VERBOSE",
        ]
        config.write_text("\n".join(lines) + "\n")
        return config

    def keys_offered(self) -> list[str]:
        """Fingerprints of every public key a client offered or used (VERBOSE logs them), in order."""
        pattern = r"(?:(?:Accepted|Failed) publickey for \S+ from .* ssh2: \S+|Accepted key \S+) (SHA256:[\w+/=]+)"
        return re.findall(pattern, self.log())

    def connections(self) -> int:
        return len(re.findall(r"^Connection from 127\.0\.0\.1", self.log(), re.MULTILINE))
