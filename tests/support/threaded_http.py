"""The lifecycle both in-process test HTTP servers share: serve in a thread, stop cleanly."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class OwnedServer(ThreadingHTTPServer):
    """A threading HTTP server whose handlers reach their owner through ``server.owner``."""

    daemon_threads = True
    allow_reuse_address = True
    owner: Any

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-response are normal in fault tests


class ThreadedHTTPServer:
    """Context manager base: binds 127.0.0.1 on a free port and serves ``handler`` in a thread."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self.port = 0
        self._server: OwnedServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Any:
        self._server = OwnedServer(("127.0.0.1", 0), self.handler)
        self._server.owner = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
