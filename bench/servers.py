"""Servers the benchmark runs on 127.0.0.1: a static store over HTTP, and a counting TCP proxy.

- `StoreServer`: threaded HTTP/1.1 (keep-alive) file server with single `Range`
  support, like a CDN in front of a bucket; counts body bytes served.
- `CountingProxy`: forwards TCP connections (here: to `git daemon`) and counts the
  bytes the upstream sends to clients, i.e. what origin served.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def add(self, n: int = 0, requests: int = 0) -> None:
        with self._lock:
            self.bytes += n
            self.requests += requests

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.bytes, self.requests


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Inclusive (start, end); None: serve the whole file; "unsatisfiable"."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multi-range or malformed: allowed to ignore it
    if not m.group(1):
        n = int(m.group(2))
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(m.group(1))
    if start >= size:
        return "unsatisfiable"
    end = int(m.group(2)) if m.group(2) else size - 1
    if end < start:
        return None  # invalid: ignore the header
    return start, min(end, size - 1)


class _StoreHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StoreHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _empty(self, status: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, body: bool) -> None:
        self.server.counter.add(requests=1)
        root = self.server.root
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        path = (root / rel).resolve()
        if root != path and root not in path.parents or not path.is_file():
            self._empty(404)
            return
        size = path.stat().st_size
        rng = parse_range(self.headers.get("Range"), size)
        if rng == "unsatisfiable":
            self._empty(416, {"Content-Range": f"bytes */{size}"})
            return
        start, end = rng if isinstance(rng, tuple) else (0, size - 1)
        length = max(0, end - start + 1)
        self.send_response(206 if isinstance(rng, tuple) else 200)
        if isinstance(rng, tuple):
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "text/plain" if path.name == "bundle-list" else "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if not body or length == 0:
            return
        self.wfile.flush()
        with path.open("rb") as f:
            sent = 0
            try:
                while sent < length:
                    n = self.connection.sendfile(f, start + sent, length - sent)
                    if n == 0:
                        break
                    sent += n
            except OSError:
                self.close_connection = True
            finally:
                self.server.counter.add(sent)


class _StoreHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root.resolve()
        self.counter = Counter()
        super().__init__((host, 0), _StoreHandler)


class StoreServer:
    """Serves `root` at http://<host>:<port>/ (an OS-chosen port) until stopped."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.httpd = _StoreHTTPServer(root, host)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.counter = self.httpd.counter
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="store-http", daemon=True)

    def __enter__(self) -> StoreServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CountingProxy:
    """Listens on 127.0.0.1:<port> and forwards every connection to `upstream`.

    `counter.bytes` is what upstream sent to clients; `received` what clients sent.
    """

    BUF = 256 * 1024

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.counter = Counter()
        self.received = Counter()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._active = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every connection is fully closed, so the counters are final."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.counter.add(requests=1)
            with self._idle:
                self._active += 1
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        try:
            self._forward(client)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        pumps = [
            threading.Thread(target=self._pump, args=(upstream, client, self.counter), daemon=True),
            threading.Thread(target=self._pump, args=(client, upstream, self.received), daemon=True),
        ]
        for t in pumps:
            t.start()
        for t in pumps:
            t.join()
        client.close()
        upstream.close()

    def _pump(self, src: socket.socket, dst: socket.socket, counter: Counter) -> None:
        try:
            while True:
                data = src.recv(self.BUF)
                if not data:
                    break
                dst.sendall(data)
                counter.add(len(data))
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.05)
