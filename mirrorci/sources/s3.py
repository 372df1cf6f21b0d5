"""Bundles read through the S3 API with the client's own credentials (s3:// URIs).

Time: botocore's connect and read timeouts bound each socket operation (the stall
limit), the request itself runs on a side thread the attempt stops waiting for at
its deadline, and a watchdog shuts the body's socket down at the deadline so a
blocked read returns. Anything boto3, botocore or urllib3 raises becomes SourceFailed.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, BinaryIO

from .. import ondemand
from ..backend import setting
from ..deadline import Deadline
from ..errors import SourceFailed, UsageError
from ..s3config import BACKEND, S3Options, make_client, split_s3_url
from .base import FetchContext, Fetched, Source, first_working, plans_for

READ_CHUNK = 1 << 20  # urllib3 reads until it has this much: modest, so deadline checks come often


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _body_socket(body: Any) -> socket.socket | None:
    """The socket under a botocore StreamingBody (urllib3 1.x and 2.x keep it in different places)."""
    raw = getattr(body, "_raw_stream", None)
    for holder in (getattr(raw, "connection", None), getattr(raw, "_connection", None)):
        sock = getattr(holder, "sock", None)
        if sock is not None:
            return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client response -> socket file
    return getattr(fp, "_sock", None)


class _S3Body:
    def __init__(self, body: Any, deadline: Deadline) -> None:
        self.body = body
        self.deadline = deadline
        self.fired = False
        self._timer = threading.Timer(deadline.remaining(), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        """At the deadline: cut the connection so a read blocked on it returns now."""
        self.fired = True
        sock = _body_socket(self.body)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                self.body.close()
        except Exception:
            pass

    def _timed_out(self) -> SourceFailed:
        return SourceFailed(f"the S3 download did not finish within --timeout {self.deadline.seconds:g} s")

    def read(self, n: int = -1) -> bytes:
        want = READ_CHUNK if n < 0 else min(n, READ_CHUNK)
        try:
            data = self.body.read(want)
        except Exception as exc:  # botocore and urllib3 raise their own types
            if self.fired:
                raise self._timed_out() from None
            raise SourceFailed(f"S3 download interrupted: {_reason(exc)}") from None
        if self.fired:
            raise self._timed_out()
        return data

    def __enter__(self) -> _S3Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        try:
            self.body.close()
        except Exception:
            pass


def _client(options: S3Options, deadline: Deadline) -> Any:
    """An S3 client whose sockets time out after the stall limit, and that retries once at most."""
    from botocore.config import Config

    io = deadline.io_timeout()
    return make_client(options, Config(connect_timeout=io, read_timeout=io,
                                       retries={"max_attempts": 2, "mode": "standard"}))


def _bounded(call: Any, deadline: Deadline, what: str) -> Any:
    """Run `call` on a side thread and wait for it no longer than the deadline allows."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="mirrorci-s3", daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        raise SourceFailed(f"{what} did not answer within --timeout {deadline.seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class S3Source(Source):
    name = "s3"
    backend = BACKEND

    def fetch(self, ctx: FetchContext) -> Fetched:
        plans = plans_for(ctx, ("s3",))
        if not plans:
            raise SourceFailed("no bundle in the mirror list for this method")
        ondemand.require("s3", "the s3 method", ctx.deadline.remaining())  # boto3, imported only now
        try:
            options = setting(ctx.settings, BACKEND.name, S3Options)
            client = _bounded(lambda: _client(options, ctx.deadline), ctx.deadline, "setting up the S3 client")
        except (SourceFailed, UsageError):  # UsageError: the user's own --s3-* options
            raise
        except Exception as exc:  # missing boto3, unknown profile, ...
            raise SourceFailed(f"cannot set up the S3 client: {_reason(exc)}") from None

        def opener(uri: str) -> BinaryIO:
            try:
                bucket, key = split_s3_url(uri)
            except Exception as exc:
                raise SourceFailed(f"bad s3 URL in the bundle list: {_reason(exc)}") from None
            if not key:
                raise SourceFailed(f"bad s3 URL in the bundle list: s3://{bucket}/ names no object")
            try:
                response = _bounded(lambda: client.get_object(Bucket=bucket, Key=key), ctx.deadline,
                                    f"S3 get s3://{bucket}/{key}")
            except SourceFailed:
                raise
            except Exception as exc:
                raise SourceFailed(f"S3 get s3://{bucket}/{key} failed: {_reason(exc)}") from None
            return _S3Body(response["Body"], ctx.deadline)  # type: ignore[return-value]

        return first_working(ctx, self.name, plans, opener)

