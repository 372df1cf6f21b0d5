"""Deadlines, disk limits, mirror errors and credentials, against real sockets on 127.0.0.1.

--timeout bounds each mirror method's whole attempt: a mirror that drips one byte a
second, or accepts a connection and never answers, ends in a SourceFailed naming
the timeout, well before a CI job would be killed. A list entry larger than
--max-bundle-size or the free disk is refused before any byte is requested.
Whatever the clone's config holds, a git mirror never sees origin's credentials.
The time bounds asserted here are generous (several times the deadline): they
catch a hang, not a slow machine.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from mirrorci.apply import check_room, parse_size
from mirrorci.deadline import Deadline
from mirrorci.errors import SourceFailed
from mirrorci.gitcmd import Git, GitTimeout
from mirrorci.mirrorlist import BundleEntry, BundleList, MirrorSet
from mirrorci.s3config import S3Options
from mirrorci.sources.base import FetchContext
from mirrorci.sources.git_mirror import GitMirrorSource
from mirrorci.sources.http import HttpSource
from mirrorci.sources.s3 import S3Source
from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout
from tests.support.repos import git

SECRET = "s3cr3t-" + uuid.uuid4().hex
HANG = 30.0  # a method still running this long after a 3 s --timeout would have hung
GIVE_UP = 45.0  # the hostile server lets go after this long, so a regression fails instead of hanging


class Hostile:
    """A TCP server that misbehaves in one way and records what clients sent.

    modes: "silent" accepts and never answers; "drip" sends HTTP headers then one body
    byte a second; "drip-headers" sends the status line, then headers a byte a second;
    "stall" sends the headers and then nothing; "401" asks every request for credentials.
    """

    def __init__(self, mode: str, size: int = 1 << 20) -> None:
        self.mode = mode
        self.size = size
        self.received = bytearray()
        self.connections = 0
        self.hung_up = threading.Event()  # a client closed a connection we kept open
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Hostile:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._until = time.monotonic() + GIVE_UP
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept(); close() alone would not
        except OSError:
            pass
        self.sock.close()

    def url(self, path: str = "/x.bundle", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _recv(self, conn: socket.socket) -> bytes:
        try:
            data = conn.recv(65536)
        except OSError:
            return b""
        with self._lock:
            self.received += data
        return data

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        try:
            if self.mode == "silent":
                return self._until_hangup(conn)
            head = b""
            while b"\r\n\r\n" not in head and self._going():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                head += data
                with self._lock:
                    self.received += data
            if self.mode == "401":
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"m\"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if self.mode == "drip-headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                return self._drip(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % self.size)
            if self.mode == "drip":
                return self._drip(conn)
            self._until_hangup(conn)  # "stall"
        except OSError:
            self.hung_up.set()
        finally:
            conn.close()

    def _going(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._until

    def _drip(self, conn: socket.socket) -> None:
        while self._going():
            conn.sendall(b"a")  # raises once the client is gone
            time.sleep(1.0)

    def _until_hangup(self, conn: socket.socket) -> None:
        while self._going():
            try:
                if not conn.recv(65536):
                    self.hung_up.set()
                    return
            except TimeoutError:
                continue


@pytest.fixture
def repo(tmp_path: Path) -> Git:
    path = tmp_path / "clone"
    git(tmp_path, "init", "-q", str(path))
    return Git(path)


def context(repo: Git, mirrors: MirrorSet, timeout: float = 3.0, stall: float = 30.0, **kw: object) -> FetchContext:
    assert repo.cwd is not None
    return FetchContext(git=repo, repo_dir=repo.cwd, mirrors=mirrors, deadline=Deadline(timeout, stall), **kw)  # type: ignore[arg-type]


def bundle_mirrors(uri: str, size: int = 1 << 20, **kw: object) -> MirrorSet:
    entry = BundleEntry(id="b", uri=uri, creation_token=1, sha256="0" * 64, size=size, **kw)  # type: ignore[arg-type]
    return MirrorSet(bundle_list=BundleList([entry]))


def pack_files(repo: Git) -> list[str]:
    return sorted(p.name for p in repo.git_path("objects/pack").iterdir())


def fails_in_time(fetch: object, ctx: FetchContext, *expected: str) -> str:
    started = time.monotonic()
    with pytest.raises(SourceFailed) as info:
        fetch.fetch(ctx)  # type: ignore[attr-defined]
    elapsed = time.monotonic() - started
    assert elapsed < HANG, f"took {elapsed:.1f} s"
    reason = str(info.value)
    assert all(e in reason for e in expected), reason
    return reason


# --- HTTP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("verify", ["auto", "full"])
def test_a_mirror_dripping_one_byte_a_second_fails_within_the_deadline(repo, verify):
    with Hostile("drip") as server:
        ctx = context(repo, bundle_mirrors(server.url()), verify=verify)
        fails_in_time(HttpSource(), ctx, "--timeout 3")
    assert not [n for n in pack_files(repo) if n.startswith("tmp")]


def test_headers_dripped_one_byte_a_second_fail_within_the_deadline(repo):
    with Hostile("drip-headers") as server:
        fails_in_time(HttpSource(), context(repo, bundle_mirrors(server.url())), "--timeout 3")


def test_a_mirror_that_stops_sending_is_abandoned_after_the_stall_limit(repo):
    with Hostile("stall") as server:
        reason = fails_in_time(HttpSource(), context(repo, bundle_mirrors(server.url()), timeout=600, stall=1),
                               "--stall-timeout")
    assert "--timeout" not in reason.replace("--stall-timeout", "")


def test_a_listener_that_never_answers_an_http_download_fails_within_the_deadline(repo):
    with Hostile("silent") as server:
        fails_in_time(HttpSource(), context(repo, bundle_mirrors(server.url())), "3 s")


def test_checkout_falls_back_to_origin_when_the_mirror_drips(served_origin, tmp_path):
    """The same through the command line: --timeout reaches the download, the clone comes from origin."""
    with Hostile("drip") as server:
        publisher = tmp_path / "publisher"
        git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(publisher))
        run_cli("publish", "--repo", publisher, "--store", tmp_path / "store", "--public-url", server.url("/m"))
        started = time.monotonic()
        result = checkout(served_origin.git_url, tmp_path / "co", "--timeout", "3", "--stall-timeout", "20")
        assert time.monotonic() - started < HANG + 30  # the clone from origin included
    assert result["method"] == "origin"
    assert any(f["method"] == "http" and "--timeout 3" in f["reason"] for f in result["fallbacks"]), result
    assert_same_as_git_clone(Path(result["path"]), served_origin.git_url, tmp_path)


# --- size and disk -------------------------------------------------------------------------------


def test_a_terabyte_list_entry_is_refused_before_any_byte_is_requested(repo):
    with Hostile("drip") as server:
        before = pack_files(repo)
        fails_in_time(HttpSource(), context(repo, bundle_mirrors(server.url(), size=10**12)), "--max-bundle-size")
        assert server.connections == 0 and not server.received
    assert pack_files(repo) == before


def test_an_oversized_index_is_refused_too(repo):
    mirrors = bundle_mirrors("http://127.0.0.1:9/x.bundle", size=1000, idx_uri="http://127.0.0.1:9/x.idx",
                             idx_sha256="0" * 64, idx_size=10**12, pack_checksum="0" * 40)
    fails_in_time(HttpSource(), context(repo, mirrors), "pack index", "--max-bundle-size")


def test_a_bundle_larger_than_the_free_disk_is_refused_before_download(repo):
    with Hostile("drip") as server:
        ctx = context(repo, bundle_mirrors(server.url(), size=1 << 60), max_bundle_size=1 << 62)
        fails_in_time(HttpSource(), ctx, "not enough free disk")
        assert server.connections == 0


def test_check_room_leaves_a_margin(tmp_path):
    entry = BundleEntry(id="b", uri="http://h/b", creation_token=1, sha256="0" * 64, size=1000)
    check_room(tmp_path, entry, 1 << 30)
    with pytest.raises(SourceFailed, match="--max-bundle-size 500"):
        check_room(tmp_path, entry, 500)


@pytest.mark.parametrize("text,size", [("1", 1), ("500M", 500 << 20), ("20G", 20 << 30), ("64GiB", 64 << 30),
                                       ("10KB", 10 << 10), ("1.5T", 3 << 39)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1", "x", "12Q", "", "nan", "inf", "G"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize("args", [("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "soon"),
                                  ("--stall-timeout", "0"), ("--stall-timeout", "inf"),
                                  ("--max-bundle-size", "12Q"), ("--max-bundle-size", "0")])
def test_limits_are_validated_as_usage_errors(tmp_path, args):
    result = run_cli("checkout", "https://h/r.git", "--path", tmp_path / "d", *args, expect=2)
    assert args[0] in result.stderr
    assert not (tmp_path / "d").exists()


# --- malformed URLs are fallbacks, never crashes -------------------------------------------------


@pytest.mark.parametrize("uri", ["http://[::1/x", "http://127.0.0.1:notaport/x", "http://127.0.0.1:99999/x",
                                 "http://127.0.0.1:1/a b\nc", "gopher://h/x"])
@pytest.mark.parametrize("where", ["uri", "idx_uri"])
def test_malformed_http_urls_fail_as_sources(repo, uri, where):
    extra = {"idx_uri": uri, "idx_sha256": "0" * 64, "idx_size": 10, "pack_checksum": "0" * 40}
    mirrors = bundle_mirrors(uri, size=100) if where == "uri" else bundle_mirrors("http://127.0.0.1:9/b", 100, **extra)
    fails_in_time(HttpSource(), context(repo, mirrors))


@pytest.mark.parametrize("uri", ["s3:///k", "s3://bucket", "s3://[::1/x"])
def test_malformed_s3_urls_fail_as_sources(repo, uri, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fails_in_time(S3Source(), context(repo, bundle_mirrors(uri, size=100)), "s3")


@pytest.mark.parametrize("url", ["http://[::1/x", "git://127.0.0.1:port/x", "--upload-pack=touch pwned",
                                 "ext::sh -c touch% pwned", "git://127.0.0.1:1/a\nb", "file:///etc"])
def test_malformed_git_mirror_urls_fail_as_sources(repo, url, tmp_path):
    fails_in_time(GitMirrorSource(), context(repo, MirrorSet(git_mirrors=[url])))
    assert not (repo.cwd / "pwned").exists() and not (tmp_path / "pwned").exists()  # type: ignore[operator]


# --- S3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drip", "silent"])
def test_an_s3_endpoint_that_drips_or_never_answers_fails_within_the_deadline(repo, mode, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with Hostile(mode) as server:
        ctx = context(repo, bundle_mirrors("s3://bucket/x.bundle"),
                      settings={"s3": S3Options(endpoint_url=server.url(""), addressing_style="path")})
        fails_in_time(S3Source(), ctx, "--timeout 3")


# --- git: subprocess deadlines -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_a_git_mirror_that_never_answers_fails_within_the_deadline(repo, scheme):
    """git:// talks from git itself, http:// from git-remote-http: both must die at the deadline."""
    with Hostile("silent") as server:
        ctx = context(repo, MirrorSet(git_mirrors=[server.url("/m.git", scheme)]), stall=600)
        fails_in_time(GitMirrorSource(), ctx, "--timeout 3")
        # The connection is closed by the client's death, not by a stall limit of its own.
        assert server.hung_up.wait(HANG), "a git process is still holding the mirror's connection"
    assert not [n for n in pack_files(repo) if n.startswith("tmp")]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped by whoever adopted it


def test_git_run_timeout_kills_the_whole_process_group(tmp_path):
    """A helper git started (here `sleep`, holding git's stdout) must die with it."""
    pidfile = tmp_path / "pid"
    slow = Git(tmp_path, config=(f"alias.slow=!echo $$ > {pidfile}; exec sleep 60",))
    started = time.monotonic()
    with pytest.raises(GitTimeout) as info:
        slow.run("slow", timeout=1)
    assert time.monotonic() - started < HANG
    assert isinstance(info.value, SourceFailed) and "did not finish" in str(info.value)
    pid = int(pidfile.read_text())
    for _ in range(100):
        if not alive(pid):
            break
        time.sleep(0.05)
    assert not alive(pid), "the command's child outlived the timeout"


def test_git_run_without_timeout_is_unchanged(tmp_path):
    assert Git(tmp_path).out("version", timeout=30).startswith("git version")
    assert Git(tmp_path).out("version").startswith("git version")


# --- credentials ---------------------------------------------------------------------------------


def persist_origin_credentials(repo: Git, base: str) -> None:
    """What --persist-credentials and actions/checkout leave behind, scoped to origin's URL,
    which here is the mirror's own scheme://host:port; plus a credential helper for that URL."""
    repo.run("config", f"http.{base}/.extraheader", f"Authorization: basic {SECRET}")
    repo.run("config", f"http.{base}.extraheader", f"X-Origin-Token: {SECRET}")
    repo.run("config", f"credential.{base}.helper", f"!f() {{ echo username=u; echo password={SECRET}; }}; f")
    repo.run("config", "credential.helper", f"!f() {{ echo username=u; echo password={SECRET}; }}; f")


def credential_env(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """And in the environment, as a runner might set it (GIT_CONFIG_COUNT after the test's own)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"http.{base}/.extraHeader")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"Authorization: bearer {SECRET}")
    monkeypatch.setenv("GIT_CONFIG_KEY_1", "http.extraHeader")
    monkeypatch.setenv("GIT_CONFIG_VALUE_1", f"X-Env-Token: {SECRET}")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'http.{base}/.extraheader'='X-Param-Token: {SECRET}'")


def test_a_git_mirror_on_origins_host_never_sees_origins_credentials(repo, served_origin, git_http, monkeypatch):
    """The mirror is served over smart HTTP on the very scheme://host:port the credentials are for."""
    base = f"http://127.0.0.1:{git_http.port}"
    persist_origin_credentials(repo, base)
    credential_env(monkeypatch, base)
    git_http.reset()

    fetched = GitMirrorSource().fetch(context(repo, MirrorSet(http_mirrors=[served_origin.http_url]), timeout=120))

    assert fetched.tips and fetched.bytes > 0
    assert git_http.headers_seen, "the mirror was not contacted"
    for headers in git_http.headers_seen:
        assert SECRET not in repr(headers)
        assert not any(k.lower() in ("authorization", "cookie") for k in headers), headers
    # The objects landed in the clone itself, and its own config is as it was.
    assert repo.ok("cat-file", "-e", next(iter(fetched.tips.values())))
    assert SECRET in repo.out("config", f"http.{base}/.extraheader")


def test_a_git_mirror_asking_for_credentials_gets_none(repo, monkeypatch, tmp_path):
    """A mirror answering 401 would make git ask its credential helpers and ~/.netrc: it must find nothing."""
    with Hostile("401") as server:
        base = f"http://127.0.0.1:{server.port}"
        persist_origin_credentials(repo, base)
        credential_env(monkeypatch, base)
        home = tmp_path / "home"
        home.mkdir()
        (home / ".netrc").write_text(f"machine 127.0.0.1 login u password {SECRET}\n")
        monkeypatch.setenv("HOME", str(home))
        fails_in_time(GitMirrorSource(), context(repo, MirrorSet(http_mirrors=[server.url("/m.git")]), timeout=60))
        assert server.received, "the mirror was not contacted"
        assert SECRET.encode() not in server.received
        assert b"authorization:" not in bytes(server.received).lower()
