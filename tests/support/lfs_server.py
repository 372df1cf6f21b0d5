"""A real Git LFS server (giftless, local-storage backend) behind a byte-counting proxy, on 127.0.0.1.

giftless is a Flask application; it runs in its own process (the Flask development
server) with anonymous read-write access. In front of it, in this process, a small
HTTP/1.1 reverse proxy forwards every request unchanged (the Host header included, so
the transfer URLs giftless hands out point at the proxy too) and counts the response
bytes, which is what "bytes served by origin's LFS server" means in the tests.

Repositories live at ``<url>/<org>/<repo>.git/info/lfs``; ``lfs_url(name)`` gives the
URL to put in a repository's ``.lfsconfig``, and ``make_lfs_origin`` builds such a
repository and pushes it (git-lfs's pre-push hook uploads the objects to the server).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from .ports import free_port
from .processes import ServerProcess
from .repos import git
from .threaded_http import OwnedServer, ThreadedHTTPServer

ORG = "lfs"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length"}


def _config(storage: Path) -> str:
    """giftless's configuration (YAML is a superset of JSON): anyone may read and write, objects on disk."""
    return json.dumps({
        "AUTH_PROVIDERS": ["giftless.auth.allow_anon:read_write"],
        "LEGACY_ENDPOINTS": False,
        "TRANSFER_ADAPTERS": {"basic": {
            "factory": "giftless.transfer.basic_streaming:factory",
            "options": {"storage_class": "giftless.storage.local_storage:LocalStorage",
                        "storage_options": {"path": str(storage)}},
        }},
    })


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OwnedServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def _request_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        owner: LfsServer = self.server.owner.lfs
        body = self._request_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", owner.app_port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body if self.command in ("POST", "PUT") else None,
                             headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        # Counted before it is sent: the client cannot have it before the test can see it counted.
        sent = len(data) if self.command != "HEAD" else 0
        owner._record(self.command, self.path, dict(self.headers.items()), response.status, sent)
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if sent:
            self.wfile.write(data)


class _Proxy(ThreadedHTTPServer):
    handler = _ProxyHandler

    def __init__(self, lfs: LfsServer) -> None:
        super().__init__()
        self.lfs = lfs


class LfsServer(ServerProcess):
    """giftless on a free port, reached through a counting proxy; ``reset()`` clears the counters."""

    def __init__(self, storage: Path) -> None:
        super().__init__("giftless")
        self.storage = Path(storage)
        self.app_port = 0
        self._proxy = _Proxy(self)
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.headers_seen: list[dict[str, str]] = []
        self.bytes_sent = 0  # every response body byte, batch API answers included
        self.object_bytes = 0  # the bytes of LFS objects downloaded (GET of an object)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._proxy.port}"

    def lfs_url(self, repo: str) -> str:
        """The LFS endpoint of repository ``repo``, for ``lfs.url`` in a ``.lfsconfig``."""
        return f"{self.url}/{ORG}/{repo}.git/info/lfs"

    def stored(self, repo: str, oid: str) -> Path:
        """Where giftless keeps an object of ``repo``."""
        return self.storage / ORG / f"{repo}.git" / oid

    def downloads(self) -> list[str]:
        """Paths (without the query) of the object downloads served so far."""
        with self._lock:
            return [path.split("?", 1)[0] for method, path, status in self.requests
                    if method == "GET" and "/objects/storage/" in path]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers_seen.clear()
            self.bytes_sent = self.object_bytes = 0

    def _record(self, method: str, path: str, headers: dict[str, str], status: int, sent: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))
            self.headers_seen.append(headers)
            self.bytes_sent += sent
            if method == "GET" and "/objects/storage/" in path:
                self.object_bytes += sent

    def __enter__(self) -> LfsServer:
        self.storage.mkdir(parents=True, exist_ok=True)
        self.app_port = free_port()
        env = {**os.environ, "GIFTLESS_CONFIG_STR": _config(self.storage), "PYTHONWARNINGS": "ignore"}
        self.start([sys.executable, "-m", "flask", "--app", "giftless.wsgi_entrypoint", "run",
                    "--host", "127.0.0.1", "--port", str(self.app_port), "--no-reload", "--no-debugger"],
                   port=self.app_port, env=env, timeout=30)
        self._proxy.__enter__()
        return self

    def stop(self) -> None:
        self._proxy.__exit__(None, None, None)
        super().stop()


LFS_ATTRIBUTES = "*.bin filter=lfs diff=lfs merge=lfs -text\n"


@dataclass
class LfsOrigin:
    """A bare origin whose LFS objects are on the LFS server, and the work clone that pushed them."""

    name: str
    bare: Path
    work: Path
    files: dict[str, bytes]  # the LFS files of the last commit, path -> content

    def oid(self, path: str) -> str:
        return hashlib.sha256(self.files[path]).hexdigest()

    def commit(self, files: dict[str, bytes], message: str) -> None:
        """Commit LFS files in the work clone and push (git-lfs's pre-push hook uploads their objects)."""
        for rel, data in files.items():
            (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.work / rel).write_bytes(data)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", message)
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/main")
        self.files.update(files)


def sample_lfs_files(seed: int = 7) -> dict[str, bytes]:
    """Random (incompressible) LFS files: one duplicated under another name, one in docs/ for sparse checkouts."""
    rng = random.Random(seed)
    logo = rng.randbytes(120_000)
    return {
        "assets/logo.bin": logo,
        "assets/copy of logo.bin": logo,
        "models/weights.bin": rng.randbytes(60_000),
        "tools/run.bin": rng.randbytes(5_000),
        "docs/manual.bin": rng.randbytes(30_000),
    }


def make_lfs_origin(lfs: LfsServer, serve_root: Path, push_url: Callable[[str], str], tmp: Path) -> LfsOrigin:
    """A repository using LFS (its .lfsconfig points at ``lfs``), pushed to ``serve_root/<name>.git``."""
    name = f"lfs-{uuid.uuid4().hex[:8]}"
    bare = serve_root / f"{name}.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp / f"{name}-work"
    git(tmp, "init", "-q", "-b", "main", str(work))
    git(work, "lfs", "install", "--local")
    git(work, "config", "lfs.locksverify", "false")  # giftless has no locking API
    (work / ".gitattributes").write_text(LFS_ATTRIBUTES)
    (work / ".lfsconfig").write_text(f'[lfs]\n\turl = "{lfs.lfs_url(name)}"\n')
    (work / "docs").mkdir()
    (work / "docs" / "readme.md").write_text("# docs\n")
    files = sample_lfs_files()
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    (work / "tools" / "run.bin").chmod(0o755)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "LFS files")
    git(work, "remote", "add", "origin", push_url(bare.name))
    git(work, "push", "-q", "origin", "main")
    return LfsOrigin(name, bare, work, dict(files))
