"""Progress for long transfers: a live line in a terminal, a few terse lines in CI.

One printer for every transfer: downloads and uploads count their bytes through it
(call it with each chunk's length); a torrent client or daemon that counts for
itself reports its totals with `update`.
"""

from __future__ import annotations

import sys
import time

from . import log

TTY_EVERY = 0.2  # seconds between redraws of the live line
CI_EVERY = 5.0  # seconds between log lines in CI for transfers reported by a client
_shown = True  # `--no-progress` (show-progress: false): transfers log only their closing line


def show(enabled: bool) -> None:
    """Turn the live line and the periodic CI lines of every transfer on or off."""
    global _shown
    _shown = enabled


def human_bytes(n: float) -> str:
    """`512 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB` (GiB is the largest unit)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Bytes, rate and ETA of one transfer.

    In a terminal the line is redrawn in place; in CI a line is logged at each quarter of
    the total, and, for transfers a client reports with `update`, every CI_EVERY seconds
    (a torrent can stall well before its next quarter).
    """

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.rate: float | None = None  # reported by a client; else bytes counted over time
        self.peers: int | None = None
        self.detail = ""
        self._last_draw = 0.0
        self._next_quarter = 25
        self._tty = sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        """Count `n` more bytes."""
        self.done += n
        self._show(timed=False)

    def update(
        self, done: int, total: int | None, rate: float | None = None, peers: int | None = None, detail: str = "",
    ) -> None:
        """What a client reports: bytes done of `total`, its own rate, its peers, and any detail to show."""
        self.done, self.total, self.rate, self.peers, self.detail = done, total or self.total, rate, peers, detail
        self._show(timed=True)

    def _show(self, timed: bool) -> None:
        if not _shown:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw >= TTY_EVERY:
                self._last_draw = now
                sys.stderr.write("\r\x1b[K" + self.line(now))
                sys.stderr.flush()
            return
        total = self.total or 0
        quarter = 0 < self.done < total and self.done * 100 >= self._next_quarter * total
        if quarter or (timed and now - self._last_draw >= CI_EVERY):
            log.info(self.line(now))
            self._last_draw = now
            while total and self.done * 100 >= self._next_quarter * total:
                self._next_quarter += 25

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-6)
        rate = self.done / elapsed if self.rate is None else self.rate
        text = f"{self.label}: {human_bytes(self.done)}"
        if self.total:
            text += f" / {human_bytes(self.total)} ({100 * self.done / self.total:.0f}%)"
        text += f", {human_bytes(rate)}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {(self.total - self.done) / rate:.0f}s"
        if self.peers is not None:
            text += f", {self.peers} peer{'s' if self.peers != 1 else ''}"
        return text + (f", {self.detail}" if self.detail else "")

    def close(self, summary: str | None = None) -> float:
        """Finish the line (with `summary` instead of the counts, if given) and return the elapsed seconds."""
        elapsed = time.monotonic() - self.start
        if self._tty and _shown:
            sys.stderr.write("\r\x1b[K")
        log.info(f"{self.label}: {summary} in {elapsed:.2f}s" if summary else f"{self.line()} in {elapsed:.2f}s")
        return elapsed
