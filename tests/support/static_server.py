"""Static HTTP/1.1 file server with Range support and per-path fault injection.

Bundles are fetched over plain HTTP in CI, so tests need a server that behaves
like a CDN (ranges, keep-alive) and that can misbehave on demand (errors,
truncated bodies, corrupted bytes, slowness) to prove mirrorci detects it.
"""

from __future__ import annotations

import mimetypes
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .threaded_http import OwnedServer, ThreadedHTTPServer

_CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Fault:
    """Misbehaviour for one path (all fields optional, combinable).

    ``status``: answer with this status and an empty body.
    ``truncate_at``: advertise the full Content-Length but close the connection
    after this many body bytes of the response (applies to range responses too;
    combine with ``times=1`` to let a resumed download succeed).
    ``flip_byte_at``: XOR the byte at this absolute file offset with 0xFF.
    ``delay``: seconds to sleep before answering.
    ``times``: fire this many times, then remove itself (None = forever).
    """

    status: int | None = None
    truncate_at: int | None = None
    flip_byte_at: int | None = None
    delay: float = 0.0
    times: int | None = None


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Return inclusive ``(start, end)``, None to serve everything, or "unsatisfiable"."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multi-range or malformed: RFC 9110 lets us ignore it
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid range spec: ignore it
    if start >= size:
        return "unsatisfiable"
    return start, min(int(last), size - 1) if last else size - 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OwnedServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        owner = self.server.owner
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        range_header = self.headers.get("Range")
        owner._record(self.command, rel, range_header, dict(self.headers.items()))
        fault = owner._take_fault(rel)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.status is not None:
            return self._empty(fault.status)
        path = owner._resolve(rel)
        if path is None:
            return self._empty(404)
        size = path.stat().st_size
        rng = parse_range(range_header, size)
        if rng == "unsatisfiable":
            return self._empty(416, {"Content-Range": f"bytes */{size}"})
        start, end = rng if isinstance(rng, tuple) else (0, size - 1)
        self.send_response(206 if isinstance(rng, tuple) else 200)
        self.send_header("Content-Type", mimetypes.guess_type(rel)[0] or "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if isinstance(rng, tuple):
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body and end >= start:
            self._stream(path, start, end, fault)

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, path: Path, start: int, end: int, fault: Fault | None) -> None:
        """Copy ``[start, end]`` from disk in chunks, applying flip/truncate faults."""
        stop = end + 1
        cut: int | None = None
        if fault and fault.truncate_at is not None and start + fault.truncate_at < stop:
            cut = stop = start + fault.truncate_at
        flip = fault.flip_byte_at if fault else None
        pos = start
        try:
            with path.open("rb") as f:
                f.seek(start)
                while pos < stop:
                    block = f.read(min(_CHUNK, stop - pos))
                    if not block:
                        break
                    if flip is not None and pos <= flip < pos + len(block):
                        buf = bytearray(block)
                        buf[flip - pos] ^= 0xFF
                        block = bytes(buf)
                    self.wfile.write(block)
                    self.server.owner._add_sent(len(block))
                    pos += len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if cut is not None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class StaticServer(ThreadedHTTPServer):
    """Serves files under ``root``; see ``Fault`` for runtime misbehaviour."""

    handler = _Handler

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self.faults: dict[str, Fault] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.headers_seen: list[dict[str, str]] = []  # request headers, to prove no secret leaks to mirrors
        self._bytes_sent = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, relpath: str) -> str:
        """URL for a file relative to ``root`` (percent-encoded)."""
        return f"{self.url}/{quote(relpath.lstrip('/'))}"

    @property
    def bytes_sent(self) -> int:
        """Total body bytes sent since start or the last ``reset()``."""
        with self._lock:
            return self._bytes_sent

    def reset(self) -> None:
        """Clear faults, request log and byte counter (between tests)."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.headers_seen.clear()
            self._bytes_sent = 0

    def _record(self, method: str, rel: str, range_header: str | None, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.requests.append((method, rel, range_header))
            self.headers_seen.append(headers or {})

    def _add_sent(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n

    def _take_fault(self, rel: str) -> Fault | None:
        with self._lock:
            fault = self.faults.get(rel)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[rel]
            return fault

    def _resolve(self, rel: str) -> Path | None:
        """Map a request path to a regular file inside ``root``, refusing escapes."""
        root = self.root.resolve()
        candidate = (root / rel).resolve()
        if candidate != root and root not in candidate.parents:
            return None
        return candidate if candidate.is_file() and os.access(candidate, os.R_OK) else None

