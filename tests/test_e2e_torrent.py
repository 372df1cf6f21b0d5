"""BitTorrent end to end: publish a torrent and magnet with the refs, seed through a real
transmission-daemon, check out over the swarm (daemon or embedded libtorrent), fall back to HTTP.

Daemons and trackers are real and started here; peer-to-peer tests put the seeder in a
network namespace (Transmission ignores peers at 127.0.0.0/8) and skip without root.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, checkout, publish_to_static
from tests.support.ports import free_port
from tests.support.repos import advance_origin, git
from tests.support.static_server import Fault
from tests.support.torrent_servers import (
    NetLab,
    OpenTracker,
    TransmissionDaemon,
    have_binaries,
    netns_unavailable,
)

torf = pytest.importorskip("torf")
pytest.importorskip("transmission_rpc")

needs_transmission = pytest.mark.skipif(bool(have_binaries("transmission-daemon")),
                                        reason=have_binaries("transmission-daemon") or "")
_NETNS_WHY: list[str | None] = []


def _netns_reason() -> str | None:
    if not _NETNS_WHY:
        _NETNS_WHY.append(have_binaries("transmission-daemon", "opentracker") or netns_unavailable())
    return _NETNS_WHY[0]


def _has_libtorrent() -> bool:
    try:
        import libtorrent  # noqa: F401
    except ImportError:
        return False
    return True


needs_libtorrent = pytest.mark.skipif(not _has_libtorrent(),
                                      reason="libtorrent not installed (pip install mirrorci[libtorrent])")


@pytest.fixture(scope="session")
def _transmission_session(tmp_path_factory):
    if have_binaries("transmission-daemon"):
        pytest.skip(have_binaries("transmission-daemon"))
    with TransmissionDaemon(tmp_path_factory.mktemp("transmission")) as daemon:
        yield daemon


@pytest.fixture
def transmission(_transmission_session):
    _transmission_session.remove_all()
    yield _transmission_session
    _transmission_session.remove_all()


def closed_port_url(path: str = "/announce") -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def torrent_of(t: TransmissionDaemon, info_hash: str):
    found = t.client().get_torrents(ids=[info_hash])
    return found[0] if found else None


def replace_torrent_refs(origin_path: Path, data: bytes) -> None:
    """Point origin's torrent refs at another torrent (what a broken or hostile publisher could do)."""
    meta = torf.Torrent.read_stream(io.BytesIO(data))
    torrent_oid = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=origin_path, input=data,
                                 capture_output=True, check=True).stdout.decode().strip()
    magnet_oid = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=origin_path, input=(str(meta.magnet()) + "\n").encode(),
        capture_output=True, check=True).stdout.decode().strip()
    git(origin_path, "update-ref", "refs/mirrors/bundle/torrent", torrent_oid)
    git(origin_path, "update-ref", "refs/mirrors/bundle/torrent-magnet", magnet_oid)


def build_torrent(content_dir: Path, web_seed: str, trackers: list[str] | None = None) -> bytes:
    t = torf.Torrent(path=content_dir, webseeds=[web_seed], trackers=[[u] for u in trackers or []] or None,
                     private=False)
    t.piece_size = 4 << 20
    t.generate()
    return t.dump()


def test_torrent_refs_round_trip_through_inspect(served_origin, static_server, tmp_path):
    tracker = closed_port_url()
    published = publish_to_static(served_origin, static_server, tmp_path, "--tracker", tracker)
    info = published["torrent"]
    assert set(published["refs"]) == {"refs/mirrors/bundle/http", "refs/mirrors/bundle/torrent",
                                      "refs/mirrors/bundle/torrent-magnet"}
    assert info["piece_size"] == 4 << 20 and info["trackers"] == [tracker]
    web_seed = f"{static_server.url}/{published['prefix']}/{published['name']}/"
    assert info["web_seeds"] == [web_seed]
    assert info["seeding"] == {"state": "not requested"}
    stored = static_server.root / published["prefix"] / info["key"]
    assert torf.Torrent.read_stream(io.BytesIO(stored.read_bytes())).infohash == info["info_hash"]

    human = run_cli("inspect", served_origin.git_url).stdout
    assert f"info hash {info['info_hash']}" in human
    assert f"tracker: {tracker}" in human and f"web seed: {web_seed}" in human
    data = run_cli("inspect", served_origin.git_url, "--json").json
    assert data["torrent"]["info_hash"] == info["info_hash"]
    assert data["torrent"]["files"] == {f"{published['bundle']['sha256']}.bundle": published["bundle"]["size"],
                                        f"{published['bundle']['sha256']}.idx": published["index"]["size"]}
    magnet = torf.Magnet.from_string(data["magnet"])
    assert magnet.infohash == info["info_hash"] and magnet.tr == [tracker] and magnet.ws == [web_seed]


def test_publish_without_torrent_removes_the_previous_releases_torrent_refs(served_origin, static_server, tmp_path):
    first = publish_to_static(served_origin, static_server, tmp_path, "--tracker", closed_port_url())
    assert "refs/mirrors/bundle/torrent" in first["refs"]
    (tmp_path / "again").mkdir()
    second = publish_to_static(served_origin, static_server, tmp_path / "again")
    assert second["refs_deleted"] == ["refs/mirrors/bundle/torrent", "refs/mirrors/bundle/torrent-magnet"]
    advertised = git(tmp_path, "ls-remote", served_origin.git_url, "refs/mirrors/*")
    assert "refs/mirrors/bundle/torrent" not in advertised and "refs/mirrors/bundle/http" in advertised


@needs_transmission
@pytest.mark.parametrize("mode", ["shared-directory", "web-seed"])
def test_publish_seeds_through_transmission(served_origin, static_server, transmission, tmp_path, mode):
    extra = ["--transmission", transmission.url, "--seed-timeout", "60"]
    if mode == "shared-directory":
        shared = tmp_path / "shared"
        extra += ["--transmission-download-dir", str(shared)]
    published = publish_to_static(served_origin, static_server, tmp_path, *extra)
    seeding = published["torrent"]["seeding"]
    assert seeding["state"] == "seeding" and seeding["mode"] == mode
    t = torrent_of(transmission, published["torrent"]["info_hash"])
    assert t is not None and t.status == "seeding" and t.percent_done == 1 and t.left_until_done == 0
    bundle_path = f"{published['prefix']}/{published['bundle']['key']}"
    fetched_by_daemon = [r for r in static_server.requests if r[1] == bundle_path and r[2]]
    if mode == "shared-directory":
        assert (shared / "bundles" / f"{published['bundle']['sha256']}.bundle").is_file()
        assert fetched_by_daemon == []
    else:
        assert fetched_by_daemon, "the daemon should have fetched ranges from the web seed"


@needs_transmission
def test_keep_removes_only_older_releases_of_this_mirror(served_origin, static_server, transmission, tmp_path):
    other = tmp_path / "other"
    (other / "bundles").mkdir(parents=True)
    (other / "bundles" / "x.bin").write_bytes(b"x" * 100_000)
    unrelated = transmission.client().add_torrent(build_torrent(other / "bundles", closed_port_url("/")),
                                                  download_dir=str(other), paused=True)
    first = publish_to_static(served_origin, static_server, tmp_path, "--transmission", transmission.url)
    advance_origin(served_origin.path, tmp_path / "advance")
    (tmp_path / "again").mkdir()
    # Another store: the first torrent's base is in no list this publish reads, and --grace 0 protects nothing.
    second = publish_to_static(served_origin, static_server, tmp_path / "again", "--transmission", transmission.url,
                               "--keep", "1", "--grace", "0")
    assert second["torrent"]["seeding"]["removed"] == [first["torrent"]["info_hash"]]
    hashes = {t.hash_string for t in transmission.client().get_torrents()}
    assert hashes == {second["torrent"]["info_hash"], unrelated.hash_string}
    assert (other / "bundles" / "x.bin").is_file()


def test_unreachable_daemon_still_publishes_http_and_fails_unless_optional(served_origin, static_server, tmp_path):
    dead = closed_port_url("/transmission/rpc")
    work = tmp_path / "publisher"
    git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(work))
    store = static_server.root / f"store-{uuid.uuid4().hex[:8]}"
    failed = run_cli("publish", "--repo", work, "--store", store, "--public-url", static_server.url,
                     "--transmission", dead, expect=1)
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HTTP mirror are published" in errors[0] and "--seed optional" in errors[0]
    refs = git(served_origin.path, "for-each-ref", "--format=%(refname)", "refs/mirrors/")
    assert "refs/mirrors/bundle/http" in refs and "refs/mirrors/bundle/torrent" in refs

    ok = run_cli("publish", "--repo", work, "--store", store, "--public-url", static_server.url,
                 "--transmission", dead, "--seed", "optional", "--json")
    assert ok.json["torrent"]["seeding"]["state"] == "failed"
    assert "warning:" in ok.stderr and "seeding failed" in ok.stderr


@needs_transmission
def test_transmission_credentials_are_never_printed(served_origin, static_server, tmp_path):
    password = f"pw-{uuid.uuid4().hex[:10]}"
    with TransmissionDaemon(tmp_path / "auth-daemon", username="mirror", password=password) as daemon:
        published = publish_to_static(served_origin, static_server, tmp_path, "--transmission",
                                      daemon.url_with_credentials)
        assert published["torrent"]["seeding"]["state"] == "seeding"
        assert password not in str(published)
        wrong = f"wrong-{uuid.uuid4().hex[:8]}"
        work = tmp_path / "publisher"
        result = run_cli("publish", "--repo", work, "--store", tmp_path / "store2", "--public-url", static_server.url,
                         "--transmission", daemon.url,
                         env={"MIRRORCI_TRANSMISSION_USER": "mirror", "MIRRORCI_TRANSMISSION_PASSWORD": wrong},
                         expect=1)
        assert "authentication failed" in result.stderr
        assert wrong not in result.stderr + result.stdout and password not in result.stderr


@needs_libtorrent
def test_checkout_over_torrent_embedded_from_web_seed(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path, "--torrent")
    result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "torrent", "--torrent-timeout", "60")
    assert result["method"] == "torrent", result["fallbacks"]
    assert result["mirror_uri"] == f"magnet:?xt=urn:btih:{published['torrent']['info_hash']}"
    assert result["final_fetch"] is False and result["apply_path"] == "fast"
    bundle_path = f"{published['prefix']}/{published['bundle']['key']}"
    assert any(p == bundle_path and rng for _, p, rng in static_server.requests)  # ranges: the web seed
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


@needs_transmission
def test_checkout_over_torrent_through_daemon_from_web_seed(served_origin, static_server, transmission, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path, "--torrent")
    # No --prefer: a configured torrent client puts the swarm first.
    result = checkout(served_origin.git_url, tmp_path / "co", "--transmission", transmission.url,
                      "--torrent-timeout", "60")
    assert result["method"] == "torrent", result["fallbacks"]
    assert result["final_fetch"] is False
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)
    t = torrent_of(transmission, published["torrent"]["info_hash"])
    assert t is not None and t.status == "seeding"  # the runner's daemon keeps seeding for the next one


@needs_libtorrent
def test_corrupted_torrent_download_falls_back_to_http(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path, "--torrent")
    # A torrent whose data is not the bundle the list names: consistent pieces, wrong sha256.
    bad = static_server.root / "bad" / published["name"]
    shutil.copytree(static_server.root / published["prefix"] / published["name"] / "bundles", bad / "bundles",
                    ignore=shutil.ignore_patterns("*.torrent"))
    bundle = bad / "bundles" / f"{published['bundle']['sha256']}.bundle"
    data = bytearray(bundle.read_bytes())
    data[-100] ^= 0xFF
    bundle.write_bytes(bytes(data))
    bad_torrent = build_torrent(bad / "bundles", f"{static_server.url}/bad/{published['name']}/")
    replace_torrent_refs(served_origin.path, bad_torrent)

    result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "torrent,http", "--torrent-timeout", "60")
    assert result["method"] == "http"
    assert result["fallbacks"][0]["method"] == "torrent"
    assert "sha256" in result["fallbacks"][0]["reason"]
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


@needs_transmission
def test_stalled_swarm_falls_back_to_http_within_the_time_limit(served_origin, static_server, transmission, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path, "--torrent")
    content = static_server.root / published["prefix"] / published["name"] / "bundles"
    staged = tmp_path / "staged" / "bundles"
    staged.mkdir(parents=True)
    for suffix in ("bundle", "idx"):
        name = f"{published['bundle']['sha256']}.{suffix}"
        shutil.copyfile(content / name, staged / name)
    stalled = build_torrent(staged, f"{static_server.url}/nowhere/")  # a web seed that only answers 404
    replace_torrent_refs(served_origin.path, stalled)
    info_hash = torf.Torrent.read_stream(io.BytesIO(stalled)).infohash

    started = time.monotonic()
    result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "torrent,http",
                      "--transmission", transmission.url, "--torrent-timeout", "4")
    assert time.monotonic() - started < 25
    assert result["method"] == "http" and result["fallbacks"][0]["method"] == "torrent"
    assert "time limit" in result["fallbacks"][0]["reason"]
    assert torrent_of(transmission, info_hash) is None  # the stalled download was removed from the daemon
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


@pytest.fixture
def swarm(tmp_path, static_server):
    """A tracker on a bridge, a seeding daemon in its own namespace; the test runs on the bridge's host side."""
    why = _netns_reason()
    if why:
        pytest.skip(why)
    with NetLab() as lab:
        ns, address = lab.add()
        with OpenTracker(tmp_path / "tracker", host=lab.host_ip) as tracker, \
                TransmissionDaemon(tmp_path / "seeder", host=address, netns=ns) as seeder:
            yield lab, tracker, seeder


def _publish_to_swarm(served_origin, static_server, tmp_path, tracker, seeder) -> dict:
    published = publish_to_static(served_origin, static_server, tmp_path, "--tracker", tracker.announce_url,
                                  "--transmission", seeder.url, "--transmission-download-dir",
                                  str(seeder.download_dir), "--seed-timeout", "30")
    assert published["torrent"]["seeding"]["state"] == "seeding"
    info_hash = published["torrent"]["info_hash"]
    tracker.allow(info_hash)
    seeder.client().reannounce_torrent([info_hash])
    # The web seed goes down: whatever arrives now comes from the seeding peer.
    for key in (published["bundle"]["key"], published["index"]["key"]):
        static_server.faults[f"{published['prefix']}/{key}"] = Fault(status=404)
    return published


@needs_libtorrent
def test_checkout_from_peers_alone_embedded(served_origin, static_server, tmp_path, swarm):
    lab, tracker, seeder = swarm
    published = _publish_to_swarm(served_origin, static_server, tmp_path, tracker, seeder)
    result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "torrent", "--torrent-timeout", "60")
    assert result["method"] == "torrent", result["fallbacks"]
    t = torrent_of(seeder, published["torrent"]["info_hash"])
    assert t.uploaded_ever >= published["bundle"]["size"]
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)


def test_checkout_from_peers_alone_through_daemon(served_origin, static_server, tmp_path, swarm):
    lab, tracker, seeder = swarm
    published = _publish_to_swarm(served_origin, static_server, tmp_path, tracker, seeder)
    with TransmissionDaemon(tmp_path / "runner", host=lab.host_ip) as runner:
        result = checkout(served_origin.git_url, tmp_path / "co", "--prefer", "torrent",
                          "--transmission", runner.url, "--torrent-timeout", "60")
        assert result["method"] == "torrent", result["fallbacks"]
        assert torrent_of(runner, published["torrent"]["info_hash"]).status == "seeding"
    assert torrent_of(seeder, published["torrent"]["info_hash"]).uploaded_ever >= published["bundle"]["size"]
    assert_same_as_git_clone(tmp_path / "co", served_origin.git_url, tmp_path)
