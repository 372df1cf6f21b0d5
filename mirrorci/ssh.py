"""SSH origins: the private key, known hosts and strictness actions/checkout takes as inputs.

The key is origin's credential like the token: it is written to a 0600 file only for
git's ssh to origin, never offered to a mirror host, and removed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SshOptions:
    key: str | None = None  # private key text (from MIRRORCI_SSH_KEY; never a command line)
    known_hosts: str = ""  # extra known_hosts lines
    strict: bool = True  # StrictHostKeyChecking
    user: str = "git"  # user for owner/name repositories reached over ssh
