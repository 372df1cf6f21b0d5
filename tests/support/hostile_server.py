"""Servers a mirror host under an attacker's control would run, for the attack tests.

- ``HostileServer``: HTTP that serves whatever bytes a test sets per path, with any
  status and headers, may claim a Content-Length it never honours, drip a body one
  byte at a time, stream filler without end, or redirect anywhere; it logs every
  request's path and headers (to prove origin's credentials never reach it) and
  counts the body bytes it sent (to prove a client stopped reading).
- ``SilentListener``: a TCP port that accepts connections and never says a word,
  the cheapest way to hang a client that trusts socket timeouts alone.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from urllib.parse import urlsplit

from .threaded_http import OwnedServer, ThreadedHTTPServer

_FILLER = b"\0" * (64 * 1024)


@dataclass
class Reply:
    """What the server answers on one path.

    ``content_length``: the length claimed in the headers (default: ``len(body)``;
    ``-1`` sends no Content-Length and ends the body by closing the connection).
    ``drip``: seconds between single bytes of the body (0 sends it at once), after
    the first ``drip_after`` bytes, which go at once.
    ``endless``: after ``body``, stream this many filler bytes at full speed (a body that
    claims to be huge; bounded so a test that fails cannot fill the disk).
    """

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None
    drip: float = 0.0
    drip_after: int = 0
    endless: int = 0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OwnedServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        owner: HostileServer = self.server.owner
        path = urlsplit(self.path).path
        owner._record(Request(self.command, path, dict(self.headers.items())))
        reply = owner.routes.get(path, Reply(status=404))
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        length = reply.content_length if reply.content_length is not None else len(reply.body) + reply.endless
        if length >= 0:
            self.send_header("Content-Length", str(length))
        else:
            self.close_connection = True
        self.end_headers()
        if not body:
            return
        try:
            self._send_body(owner, reply)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send_body(self, owner: HostileServer, reply: Reply) -> None:
        if reply.drip:
            self.wfile.write(reply.body[: reply.drip_after])
            self.wfile.flush()
            owner._add_sent(len(reply.body[: reply.drip_after]))
            for i in range(reply.drip_after, len(reply.body)):
                if owner._closing.wait(reply.drip):
                    return
                self.wfile.write(reply.body[i: i + 1])
                self.wfile.flush()
                owner._add_sent(1)
        else:
            self.wfile.write(reply.body)
            owner._add_sent(len(reply.body))
        left = reply.endless
        while left > 0 and not owner._closing.is_set():
            block = _FILLER[: min(len(_FILLER), left)]
            self.wfile.write(block)
            owner._add_sent(len(block))
            left -= len(block)


class HostileServer(ThreadedHTTPServer):
    """Answers each path with the ``Reply`` a test put in ``routes``; 404 otherwise."""

    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Reply] = {}
        self.requests: list[Request] = []
        self._bytes_sent = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, path: str, reply: Reply | bytes) -> str:
        """Answer ``path`` with ``reply`` from now on; returns its URL."""
        path = "/" + path.lstrip("/")
        self.routes[path] = reply if isinstance(reply, Reply) else Reply(body=reply)
        return self.url + path

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self._bytes_sent

    def requested(self, path: str) -> list[Request]:
        path = "/" + path.lstrip("/")
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.requests.clear()
            self._bytes_sent = 0

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _add_sent(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()  # ends drips and endless bodies still being sent
        super().__exit__(exc_type, exc, tb)


class SilentListener:
    """Accepts TCP connections on 127.0.0.1 and holds them open without reading or writing."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._sock: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def __enter__(self) -> SilentListener:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
                self.accepted += 1

    def wait_for_connection(self, timeout: float = 30.0) -> bool:
        """True once a client connected (polls; for tests that act while a client hangs)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.accepted:
                return True
            time.sleep(0.02)
        return False

    def drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self.drop_connections()
