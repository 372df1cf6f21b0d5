"""Bundles over HTTP(S), and over file:// when the user allows it.

Requests go out bare: no cookies, no netrc, no Authorization, so nothing meant
for origin ever reaches a mirror host. Redirects may only lead to http(s).

Time: urllib's `timeout` bounds each socket operation, not a download, so every
socket a download opens is registered with a watchdog that shuts it down at the
attempt's deadline (a blocked read then returns at once), socket operations time
out after the stall limit, and the body is read with `read1`, one network read
at a time, so each read can be checked against the deadline.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..deadline import Deadline
from ..errors import SourceFailed
from .base import FetchContext, Fetched, Source, first_working, plans_for

USER_AGENT = f"mirrorci/{__version__}"


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise SourceFailed(f"mirror redirected to a non-HTTP URL ({urlsplit(newurl).scheme}:)")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
        return new


class _Watchdog:
    """Shuts down every socket of one download when the deadline passes, so no read can outlive it."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(deadline.remaining(), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def timed_out(self) -> SourceFailed:
        return SourceFailed(f"the download did not finish within --timeout {self.deadline.seconds:g} s")

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _watched(base: type[http.client.HTTPConnection], watchdog: _Watchdog) -> Any:
    """A connection class for urllib that hands each socket it connects to the watchdog."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            super().connect()
            watchdog.add(self.sock)

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self.watchdog), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPSConnection, self.watchdog), req,
                            context=self._context)  # type: ignore[attr-defined]


class _Body:
    """Turns short reads, resets and the deadline into SourceFailed, and closes the response."""

    def __init__(self, response: http.client.HTTPResponse, watchdog: _Watchdog) -> None:
        self.response = response
        self.watchdog = watchdog

    def read1(self, n: int = -1) -> bytes:
        return self._guard(self.response.read1, n)

    def read(self, n: int = -1) -> bytes:
        return self._guard(self.response.read, n)

    def _guard(self, read: Any, n: int) -> bytes:
        try:
            data = read(n)
        except (http.client.HTTPException, OSError, ValueError) as exc:
            if self.watchdog.fired:
                raise self.watchdog.timed_out() from None
            raise SourceFailed(f"download interrupted: {_describe(exc)}") from None
        if self.watchdog.fired:
            raise self.watchdog.timed_out()
        return data

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.watchdog.cancel()
        self.response.close()


def open_http(uri: str, deadline: Deadline | float | None = None) -> BinaryIO:
    """GET `uri`; the response body as a stream, bounded by `deadline` (seconds, or a Deadline)."""
    if not isinstance(deadline, Deadline):
        deadline = Deadline(float(deadline or 60.0))
    deadline.check("the download")
    where = _where(uri)
    try:
        request = urllib.request.Request(uri, headers={"User-Agent": USER_AGENT})
    except ValueError as exc:
        raise SourceFailed(f"bad mirror URL {where}: {exc}") from None
    watchdog = _Watchdog(deadline)
    opener = urllib.request.build_opener(_HTTPHandler(watchdog), _HTTPSHandler(watchdog), _SafeRedirect())
    try:
        response = opener.open(request, timeout=deadline.io_timeout())
    except urllib.error.HTTPError as exc:
        watchdog.cancel()
        exc.close()
        raise SourceFailed(f"HTTP {exc.code} from {where}") from None
    except SourceFailed:
        watchdog.cancel()
        raise
    except Exception as exc:  # URLError, socket errors, http.client's, a malformed URL (ValueError)
        watchdog.cancel()
        if watchdog.fired:
            raise watchdog.timed_out() from None
        raise SourceFailed(f"cannot reach {where}: {_describe(getattr(exc, 'reason', exc))}") from None
    return _Body(response, watchdog)  # type: ignore[return-value]


def _describe(exc: object) -> str:
    """A short reason: the exception's type and first line (URLError's reason may be either kind)."""
    if isinstance(exc, TimeoutError):  # socket.timeout too
        return "no data within the stall limit (--stall-timeout)"
    if not isinstance(exc, BaseException):
        return str(exc).splitlines()[0][:200] if str(exc) else "failed"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_file(uri: str) -> BinaryIO:
    try:
        literal = Path(uri[len("file://"):] if uri.startswith("file://") else urlsplit(uri).path)
        # We write file:// URIs literally (as git reads them); accept percent-encoded ones too.
        path = literal if literal.exists() else Path(unquote(urlsplit(uri).path))
    except ValueError as exc:
        raise SourceFailed(f"bad file URL: {exc}") from None
    try:
        return path.open("rb")
    except (OSError, ValueError) as exc:
        raise SourceFailed(f"cannot open {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _where(uri: str) -> str:
    """The URL without user info or query (they may hold secrets), for messages; never raises."""
    try:
        parts = urlsplit(uri)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"
    except ValueError:
        return repr(uri.split("?", 1)[0][:200])


class HttpSource(Source):
    name = "http"

    def fetch(self, ctx: FetchContext) -> Fetched:
        plans = plans_for(ctx, ("http", "https", "file"))
        if plans and not ctx.allow_file_urls:
            web = [p for p in plans if not any(e.uri.lower().startswith("file:") for e in p)]
            if not web:
                raise SourceFailed("the bundle list has only file:// URLs; pass --allow-file-urls to use them")
            plans = web

        def opener(uri: str) -> BinaryIO:
            try:
                scheme = urlsplit(uri).scheme.lower()
            except ValueError as exc:
                raise SourceFailed(f"bad mirror URL {_where(uri)}: {exc}") from None
            if scheme == "file":
                if not ctx.allow_file_urls:
                    raise SourceFailed("file:// URLs need --allow-file-urls")
                return open_file(uri)
            if scheme not in ("http", "https"):
                raise SourceFailed(f"refusing {scheme}: URL for an HTTP mirror")
            return open_http(uri, ctx.deadline)

        return first_working(ctx, self.name, plans, opener)
