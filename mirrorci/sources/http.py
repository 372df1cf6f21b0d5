"""Bundles over HTTP(S), and over file:// when the user allows it.

Requests go out bare: no cookies, no netrc, no Authorization, so nothing meant
for origin ever reaches a mirror host. Redirects may only lead to http(s).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..errors import SourceFailed
from .base import FetchContext, Fetched, bundles_for, first_working

USER_AGENT = f"mirrorci/{__version__}"


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise SourceFailed(f"mirror redirected to a non-HTTP URL ({urlsplit(newurl).scheme}:)")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
        return new


_opener = urllib.request.build_opener(_SafeRedirect())


class _Body:
    """Turns short reads and resets into SourceFailed, and closes the response."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.response = response

    def read(self, n: int = -1) -> bytes:
        try:
            return self.response.read(n)
        except (http.client.IncompleteRead, OSError) as exc:
            raise SourceFailed(f"download interrupted: {type(exc).__name__}") from None

    def __enter__(self) -> "_Body":
        return self

    def __exit__(self, *exc: object) -> None:
        self.response.close()


def open_http(uri: str, timeout: float = 60.0) -> BinaryIO:
    request = urllib.request.Request(uri, headers={"User-Agent": USER_AGENT})
    try:
        response = _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise SourceFailed(f"HTTP {exc.code} from {_where(uri)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceFailed(f"cannot reach {_where(uri)}: {reason}") from None
    return _Body(response)  # type: ignore[return-value]


def open_file(uri: str) -> BinaryIO:
    literal = Path(uri[len("file://"):] if uri.startswith("file://") else urlsplit(uri).path)
    # We write file:// URIs literally (as git reads them); accept percent-encoded ones too.
    path = literal if literal.exists() else Path(unquote(urlsplit(uri).path))
    try:
        return path.open("rb")
    except OSError as exc:
        raise SourceFailed(f"cannot open {path}: {exc.strerror}") from None


def _where(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class HttpSource:
    name = "http"

    def fetch(self, ctx: FetchContext) -> Fetched:
        entries = bundles_for(ctx, ("http", "https", "file"))
        if entries and not ctx.allow_file_urls:
            file_only = [e for e in entries if e.uri.lower().startswith("file:")]
            if len(file_only) == len(entries):
                raise SourceFailed("the bundle list has only file:// URLs; pass --allow-file-urls to use them")
            entries = [e for e in entries if e not in file_only]

        def opener(uri: str) -> BinaryIO:
            scheme = urlsplit(uri).scheme.lower()
            if scheme == "file":
                if not ctx.allow_file_urls:
                    raise SourceFailed("file:// URLs need --allow-file-urls")
                return open_file(uri)
            if scheme not in ("http", "https"):
                raise SourceFailed(f"refusing {scheme}: URL for an HTTP mirror")
            return open_http(uri, ctx.timeout)

        return first_working(ctx, self.name, entries, opener)
