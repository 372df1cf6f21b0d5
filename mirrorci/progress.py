"""Progress for long transfers: a live line in a terminal, a few terse lines in CI."""

from __future__ import annotations

import sys
import time

from . import log


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Counts bytes; shows bytes, rate and ETA. Call it with each chunk's length."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._next_quarter = 25
        self._tty = sys.stderr.isatty() and not log._quiet

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw >= 0.2:
                self._last_draw = now
                sys.stderr.write("\r\x1b[K" + self.line(now))
                sys.stderr.flush()
        elif self.total and self.done < self.total and self.done * 100 >= self._next_quarter * self.total:
            log.info(self.line(now))
            self._next_quarter += 25

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-6)
        rate = self.done / elapsed
        text = f"{self.label}: {human_bytes(self.done)}"
        if self.total:
            text += f" / {human_bytes(self.total)} ({100 * self.done / self.total:.0f}%)"
        text += f", {human_bytes(rate)}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {(self.total - self.done) / rate:.0f}s"
        return text

    def close(self) -> float:
        """Finish the line and return the elapsed seconds."""
        elapsed = time.monotonic() - self.start
        if self._tty:
            sys.stderr.write("\r\x1b[K")
        log.info(f"{self.line()} in {elapsed:.2f}s")
        return elapsed
