"""Real git servers (git:// and smart HTTP) over bare repositories, for tests.

Tests exercise mirrorci against the same transports CI uses, so we run the
genuine ``git daemon`` and ``git http-backend`` instead of faking them.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from .ports import free_port
from .processes import ServerProcess, stop_process
from .threaded_http import OwnedServer, ThreadedHTTPServer

_CHUNK = 64 * 1024


class GitDaemon(ServerProcess):
    """``git daemon`` serving every bare repo under ``root`` (push enabled)."""

    def __init__(self, root: Path) -> None:
        # Own process group: stop() also reaps the per-connection children.
        super().__init__("git daemon")
        self.root = Path(root)

    def url_for(self, name: str) -> str:
        """git:// URL of the repository ``root/name``."""
        return f"git://127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> GitDaemon:
        self.port = free_port()
        cmd = [
            "git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={self.port}",
            f"--base-path={self.root}", "--export-all", "--enable=receive-pack",
            "--informative-errors", str(self.root),
        ]
        self.start(cmd, port=self.port, stdout_to_log=False)
        return self


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the process group we created for ``proc``, then SIGKILL after ``timeout``."""
    stop_process(proc, group=True, grace=timeout)


class _CgiHandler(BaseHTTPRequestHandler):
    """Runs ``git http-backend`` as a CGI per request, streaming both bodies."""

    protocol_version = "HTTP/1.1"
    server: OwnedServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._run_backend()

    def do_POST(self) -> None:
        self._run_backend()

    def _run_backend(self) -> None:
        owner = self.server.owner
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        owner._record(self.command, self.path, chunked, dict(self.headers.items()))
        path, _, query = self.path.partition("?")
        env = owner._cgi_env()
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH", "TRANSFER_ENCODING"):
                env["HTTP_" + key] = value  # includes HTTP_CONTENT_ENCODING (gzip bodies)
        env.update(
            REQUEST_METHOD=self.command, PATH_INFO=unquote(path), QUERY_STRING=query,
            REMOTE_ADDR=self.client_address[0], CONTENT_TYPE=self.headers.get("Content-Type", ""),
        )
        if proto := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = proto  # protocol v2 negotiation
        length: int | None = None
        if not chunked and self.headers.get("Content-Length"):
            length = int(self.headers["Content-Length"])
            env["CONTENT_LENGTH"] = str(length)
        # Without CONTENT_LENGTH http-backend reads stdin to EOF (chunked case).
        proc = subprocess.Popen(
            ["git", "http-backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        stderr: list[bytes] = []
        # Feed stdin and drain stderr concurrently so no pipe can fill up and deadlock.
        feeder = threading.Thread(target=self._feed, args=(proc.stdin, length, chunked), daemon=True)
        drainer = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        feeder.start()
        drainer.start()
        try:
            self._relay_response(proc.stdout)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            feeder.join()
            proc.stdout.close()
            proc.wait()
            drainer.join()
            proc.stderr.close()
            if stderr and stderr[0]:
                owner.errors.append(stderr[0].decode(errors="replace"))

    def _feed(self, stdin: BinaryIO, length: int | None, chunked: bool) -> None:
        """Copy the request body into the CGI; keep draining it if the CGI quits early."""
        broken = False
        try:
            blocks = _chunked_blocks(self.rfile) if chunked else _fixed_blocks(self.rfile, length or 0)
            for block in blocks:
                if not broken:
                    try:
                        stdin.write(block)
                    except (BrokenPipeError, ValueError):
                        broken = True
        except (OSError, ValueError):
            self.close_connection = True
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _relay_response(self, out: BinaryIO) -> None:
        status, headers = _read_cgi_headers(out)
        self.send_response(status)
        length: int | None = None
        for name, value in headers:
            if name.lower() == "content-length":
                length = int(value)
            self.send_header(name, value)
        chunk_out = length is None and self.request_version != "HTTP/1.0"
        if chunk_out:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is None:
            self.close_connection = True  # HTTP/1.0: body ends at EOF
        self.end_headers()
        if length is None and not chunk_out:
            while block := out.read1(_CHUNK):  # type: ignore[attr-defined]
                self.wfile.write(block)
        elif chunk_out:
            while block := out.read1(_CHUNK):  # type: ignore[attr-defined]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
        else:
            remaining = length
            while remaining > 0 and (block := out.read(min(_CHUNK, remaining))):
                self.wfile.write(block)
                remaining -= len(block)


def _read_cgi_headers(out: BinaryIO) -> tuple[int, list[tuple[str, str]]]:
    """Parse CGI response headers; ``Status:`` becomes the HTTP status code."""
    status = 200
    headers: list[tuple[str, str]] = []
    saw_any = False
    for raw in iter(out.readline, b""):
        saw_any = True
        line = raw.rstrip(b"\r\n").decode("latin-1")
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    if not saw_any:
        status = 502  # backend produced nothing: surface as a gateway error
    return status, headers


def _fixed_blocks(rfile: BinaryIO, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        block = rfile.read(min(_CHUNK, remaining))
        if not block:
            raise ConnectionResetError("request body ended early")
        remaining -= len(block)
        yield block


def _chunked_blocks(rfile: BinaryIO) -> Iterator[bytes]:
    """Decode a ``Transfer-Encoding: chunked`` request body (git uses it for big pushes)."""
    while True:
        size_line = rfile.readline()
        if not size_line:
            raise ConnectionResetError("chunked body ended early")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # skip trailers
            return
        yield from _fixed_blocks(rfile, size)
        rfile.readline()  # CRLF after each chunk


class GitHttpServer(ThreadedHTTPServer):
    """Smart-HTTP git server: ``git http-backend`` behind a threaded http.server.

    Pushes are allowed via ``http.receivepack=true`` passed as GIT_CONFIG_* env,
    so the bare repos themselves need no special config.
    """

    handler = _CgiHandler

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.port = 0
        self.requests: list[tuple[str, str]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.chunked_requests = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def url_for(self, name: str) -> str:
        """http:// URL of the repository ``root/name``."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def reset(self) -> None:
        """Forget recorded requests and backend errors."""
        with self._lock:
            self.requests.clear()
            self.headers_seen.clear()
            self.errors.clear()
            self.chunked_requests = 0

    def _record(self, method: str, path: str, chunked: bool, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.headers_seen.append(headers or {})
            self.chunked_requests += int(chunked)

    def _cgi_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_CONFIG_", "HTTP_"))}
        env.update(
            GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1", SERVER_NAME="127.0.0.1",
            SERVER_PORT=str(self.port), GIT_PROJECT_ROOT=str(self.root), GIT_HTTP_EXPORT_ALL="1",
            REMOTE_USER="tester", GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.receivepack",
            GIT_CONFIG_VALUE_0="true",
        )
        env.pop("CONTENT_LENGTH", None)
        env.pop("GIT_DIR", None)
        return env

