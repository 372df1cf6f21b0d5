"""Port helpers for the real-server test fixtures.

Servers bind 127.0.0.1 on an OS-chosen port so parallel runs never collide;
subprocess servers need a port number up front, hence ``free_port``.
"""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    """Return a currently unused TCP port on 127.0.0.1 (racy, but fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts TCP connections, else raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s") from exc
            time.sleep(0.02)
