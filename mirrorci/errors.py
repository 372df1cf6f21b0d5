"""Exceptions that map to the command line's exit codes."""


class MirrorciError(Exception):
    """A failure while doing the job (exit code 1)."""

    exit_code = 1


class UsageError(MirrorciError):
    """Bad usage or bad configuration: the message says what to change (exit code 2)."""

    exit_code = 2


class GitError(MirrorciError):
    """A git command failed; carries its stderr for the message."""


class SourceFailed(MirrorciError):
    """A mirror could not be used; the checkout falls back and records the reason."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that cleanup runs as it does for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
