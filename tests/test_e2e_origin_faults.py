"""Origin misbehaving: an origin that is briefly down, and refs/mirrors/* flooded with junk refs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from mirrorci.errors import MirrorciError
from mirrorci.gitcmd import Git
from mirrorci.mirrorlist import REF_BUNDLE_HTTP
from mirrorci.remote import BlobCache, ls_remote, read_mirror_blobs
from tests.support.e2e import checkout, publish_to_static
from tests.support.git_servers import _stop_group
from tests.support.ports import free_port, wait_for_port
from tests.support.repos import git


class LateDaemon:
    """`git daemon` for `root` on a port chosen now, started only when `start()` is called."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()

    def url_for(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={self.port}", f"--base-path={self.root}",
             "--export-all", str(self.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
        self.log.close()


@pytest.fixture
def late_daemon(origin_bare: Path):
    daemon = LateDaemon(origin_bare.parent)
    try:
        yield daemon
    finally:
        daemon.stop()


def test_ls_remote_succeeds_when_origin_comes_up_after_the_first_attempt(late_daemon, origin_bare, tmp_path, capsys):
    waits: list[float] = []

    def wait_then_start(seconds: float) -> None:
        # Called between attempts: the first attempt has already been refused.
        waits.append(seconds)
        if late_daemon.proc is None:
            late_daemon.start()

    refs = ls_remote(Git(tmp_path), late_daemon.url_for(origin_bare.name), delays=(0.2, 0.5), sleep=wait_then_start)

    assert waits == [0.2]
    assert refs.refs["refs/heads/main"] == git(origin_bare, "rev-parse", "refs/heads/main")
    assert refs.head_target == "refs/heads/main"
    retried = [line for line in capsys.readouterr().err.splitlines() if "attempt" in line]
    assert len(retried) == 1 and "attempt 1 of 3" in retried[0] and "Connection refused" in retried[0]


def test_ls_remote_gives_up_after_three_refused_attempts(late_daemon, origin_bare, tmp_path):
    waits: list[float] = []
    with pytest.raises(MirrorciError, match=r"cannot list refs of .*Connection refused \(after 3 attempts\)"):
        ls_remote(Git(tmp_path), late_daemon.url_for(origin_bare.name), delays=(0.2, 0.5), sleep=waits.append)
    assert waits == [0.2, 0.5]


def test_a_missing_repository_is_not_retried(git_daemon, tmp_path):
    waits: list[float] = []
    with pytest.raises(MirrorciError, match="cannot list refs"):
        ls_remote(Git(tmp_path), git_daemon.url_for("no-such-repo.git"), sleep=waits.append)
    assert waits == []


def add_junk_mirror_refs(bare: Path, count: int) -> None:
    """`count` refs under refs/mirrors/junk/, appended to packed-refs (fast at any count).

    The header drops the "sorted" trait, so git sorts the file itself when it reads it.
    """
    blob = hash_blob(bare, b"junk\n")
    git(bare, "pack-refs", "--all")
    packed = bare / "packed-refs"
    body = [line for line in packed.read_text().splitlines() if not line.startswith("#")]
    body += [f"{blob} refs/mirrors/junk/{i:06d}" for i in range(count)]
    packed.write_text("# pack-refs with: peeled fully-peeled \n" + "".join(f"{line}\n" for line in body))


def hash_blob(bare: Path, content: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=bare, input=content,
                          capture_output=True, check=True).stdout.decode().strip()


def test_read_mirror_blobs_ignores_100000_unknown_mirror_refs(git_daemon, git_serve_root, origin_bare, tmp_path):
    served = git_serve_root / f"junk-{tmp_path.name}.git"
    origin_bare.rename(served)
    content = b"[bundle]\n\tversion = 1\n"
    blob = hash_blob(served, content)
    git(served, "update-ref", REF_BUNDLE_HTTP, blob)
    add_junk_mirror_refs(served, 100_000)
    url = git_daemon.url_for(served.name)

    remote = ls_remote(Git(tmp_path), url)
    assert sum(1 for r in remote.refs if r.startswith("refs/mirrors/junk/")) == 100_000
    assert remote.mirror_refs() == {REF_BUNDLE_HTTP: blob}
    # Even when handed every ref under refs/mirrors/, only the known ones are fetched.
    everything = {r: o for r, o in remote.refs.items() if r.startswith("refs/mirrors/")}
    blobs, fetched = read_mirror_blobs(Git(tmp_path), url, everything, BlobCache(None))

    assert blobs == {REF_BUNDLE_HTTP: content}
    assert fetched == 1


def test_checkout_uses_the_mirror_despite_100000_junk_mirror_refs(served_origin, static_server, tmp_path):
    publish_to_static(served_origin, static_server, tmp_path)
    add_junk_mirror_refs(served_origin.path, 100_000)

    result = checkout(served_origin.git_url, tmp_path / "co")

    assert result["method"] == "http" and result["final_fetch"] is False
    assert result["fallbacks"] == [] and result["warnings"] == []
    assert git(tmp_path / "co", "for-each-ref", "refs/mirrors/") == ""


def test_a_blob_cache_that_cannot_be_written_costs_only_a_warning(git_daemon, git_serve_root, origin_bare, tmp_path,
                                                                  capsys):
    served = git_serve_root / f"ro-cache-{tmp_path.name}.git"
    origin_bare.rename(served)
    blob = hash_blob(served, b"x\n")
    git(served, "update-ref", REF_BUNDLE_HTTP, blob)
    cache_root = tmp_path / "cache"
    cache_root.write_text("a file where the cache directory should be")

    blobs, fetched = read_mirror_blobs(Git(tmp_path), git_daemon.url_for(served.name), {REF_BUNDLE_HTTP: blob},
                                       BlobCache(cache_root))

    assert blobs == {REF_BUNDLE_HTTP: b"x\n"} and fetched == 1
    assert "cannot keep a mirror blob" in capsys.readouterr().err
