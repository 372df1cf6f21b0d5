"""Time limits for one mirror attempt: a hard deadline for the whole attempt, and a stall limit.

`--timeout` bounds everything a method does (connect, transfer, index or verify,
a git mirror's fetch, a torrent's wait), not each socket read: a mirror that drips
one byte a second, or accepts a connection and never answers, must not keep a CI
job running. `--stall-timeout` abandons a transfer earlier when no byte arrived
for that long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import SourceFailed

DEFAULT_TIMEOUT = 900.0
DEFAULT_STALL = 30.0


@dataclass
class Deadline:
    """A point in time an attempt must finish by; `remaining()` feeds socket and subprocess timeouts."""

    seconds: float = DEFAULT_TIMEOUT
    stall: float = DEFAULT_STALL
    started: float = field(default_factory=time.monotonic)

    @property
    def at(self) -> float:
        return self.started + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def check(self, what: str = "the mirror attempt") -> None:
        """Raise SourceFailed once the deadline has passed."""
        if self.expired():
            raise SourceFailed(f"{what} did not finish within --timeout {self.seconds:g} s")

    def io_timeout(self) -> float:
        """A socket timeout: the stall limit, never past the deadline.

        At least a moment, so that a call can still fail cleanly.
        """
        return max(0.05, min(self.stall, self.remaining()))

    def restart(self) -> Deadline:
        """The same limits, counted from now: each method gets its own attempt."""
        return Deadline(self.seconds, self.stall)
