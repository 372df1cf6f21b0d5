"""The lifecycle every out-of-process test server shares: start it with its output in a log
file, wait until it serves, and stop it (SIGTERM, then SIGKILL) without leaving it behind.

A server class subclasses ``ServerProcess`` and calls ``start()`` from its ``__enter__``;
``log()``, ``stop()`` and leaving the ``with`` block come from here. A server that does not
start raises one error carrying the tail of its log, so a failing or skipped test says why.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

LOG_TAIL = 2000  # characters of the log an error message carries


class ServerProcess:
    """One server subprocess and its log file.

    ``name`` names the server in errors. ``log_path``: keep the log in this file (it stays
    readable after ``stop()``); by default an anonymous temporary file. ``group``: run the
    server in a session of its own and signal the whole process group, so children it forks
    (per-connection workers) go too. ``grace``: seconds between SIGTERM and SIGKILL; 0 sends
    SIGKILL at once (for daemons whose orderly shutdown is slow and of no use to a test).
    """

    def __init__(self, name: str, *, log_path: Path | None = None, group: bool = True, grace: float = 5.0) -> None:
        self._name = name
        self._log_path = log_path
        self._group = group
        self._grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The running process, None before ``start()`` and after ``stop()``."""
        return self._proc

    def start(self, argv: Sequence[str], *, port: int | None = None, host: str = "127.0.0.1",
              ready: Callable[[], object] | None = None, env: Mapping[str, str] | None = None,
              timeout: float = 10.0, stdout_to_log: bool = True,
              error: type[Exception] = RuntimeError) -> None:
        """Start ``argv`` and wait until it serves: until ``ready()`` returns without raising,
        or else until ``host:port`` accepts TCP connections.

        stderr always goes to the log, stdout too unless ``stdout_to_log`` is false (then it is
        discarded). If the process exits or is not ready within ``timeout`` seconds it is
        stopped and ``error("<name> did not start: <log tail>")`` is raised.
        """
        if ready is None:
            if port is None:
                raise ValueError("start() needs a port or a ready() probe")
            ready = functools.partial(_connect, host, port)
        self._log = self._log_path.open("w+b") if self._log_path is not None else tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=self._log if stdout_to_log else subprocess.DEVNULL,
                stderr=self._log, env=None if env is None else dict(env), start_new_session=self._group,
            )
            self._wait_ready(ready, timeout)
        except Exception as exc:
            why = self.log().strip()[-LOG_TAIL:] or str(exc)
            ServerProcess.stop(self)
            raise error(f"{self._name} did not start: {why}") from None
        except BaseException:
            ServerProcess.stop(self)
            raise

    def _wait_ready(self, probe: Callable[[], object], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if (code := self._proc.poll()) is not None:
                raise RuntimeError(f"exited with status {code}")
            try:
                probe()
                return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"not ready within {timeout:g}s: {exc}") from exc
            time.sleep(0.05)

    def log(self) -> str:
        """What the server wrote so far ("" before it started)."""
        if self._log is not None:
            return _read_all(self._log.fileno()).decode(errors="replace")
        if self._log_path is not None and self._log_path.exists():
            return self._log_path.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        """End the server (and its process group); safe to call twice or before ``start()``."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, group=self._group, grace=self._grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen[bytes], *, group: bool = True, grace: float = 5.0) -> None:
    """SIGTERM ``proc`` (its process group if ``group``), SIGKILL after ``grace`` seconds.

    A process that outlives SIGKILL by 10 s is left to the kernel rather than hanging the tests.
    """
    signals = (signal.SIGTERM, signal.SIGKILL) if grace > 0 else (signal.SIGKILL,)
    for sig in signals:
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace if sig == signal.SIGTERM else 10)
            return
        except subprocess.TimeoutExpired:
            continue


def _connect(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=0.5):
        pass


def _read_all(fd: int) -> bytes:
    """The whole file, read without moving the offset the server writes at (it shares it)."""
    size = os.fstat(fd).st_size
    parts: list[bytes] = []
    offset = 0
    while offset < size and (part := os.pread(fd, size - offset, offset)):
        parts.append(part)
        offset += len(part)
    return b"".join(parts)
