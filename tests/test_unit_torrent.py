"""Torrent building and option checks that need no daemon."""

from __future__ import annotations

import pytest

from mirrorci.errors import UsageError
from mirrorci.torrent import make
from mirrorci.torrent.publishing import TorrentPublishOptions
from mirrorci.torrent.transmission import parse_url

pytest.importorskip("torf")


def test_piece_size_is_4_mib_and_grows_only_for_huge_releases():
    assert make.choose_piece_size(50 << 20) == 4 << 20
    assert make.choose_piece_size(8 << 30) == 4 << 20
    assert make.choose_piece_size(20 << 30) == 16 << 20


def test_web_seed_is_the_directory_above_bundles():
    assert make.web_seed_base("https://cdn.example/p/repo/bundles/ab.bundle") == "https://cdn.example/p/repo/"
    assert make.web_seed_base("s3://bucket/repo/bundles/ab.bundle") is None


def test_built_torrent_and_magnet_agree(tmp_path):
    content = make.stage(tmp_path, {"a.bundle": _file(tmp_path / "a", 70_000), "a.idx": _file(tmp_path / "b", 100)})
    built = make.build(content, trackers=["http://127.0.0.1:1/announce"], web_seeds=["http://127.0.0.1:2/r/"],
                       comment="mirrorci:r")
    assert built.meta.name == "bundles" and built.meta.files == {"a.bundle": 70_000, "a.idx": 100}
    assert make.magnet_info_hash(built.meta.magnet) == built.meta.info_hash == make.parse(built.data).info_hash


def test_transmission_url_credentials_come_from_url_or_environment():
    a = parse_url("http://u:p%40ss@host:9999/rpc", env={})
    assert (a.username, a.password, a.port, a.path) == ("u", "p@ss", 9999, "/rpc")
    assert "p@ss" not in a.describe()
    b = parse_url("host", env={"MIRRORCI_TRANSMISSION_PASSWORD": "other"})
    assert (b.port, b.path, b.password) == (9091, "/transmission/rpc", "other")
    with pytest.raises(UsageError):
        parse_url("ftp://host")


@pytest.mark.parametrize("kwargs", [{"keep": 2}, {"tracker": "ftp://x"}, {"keep_zero": True}])
def test_bad_publish_options_are_usage_errors(kwargs):
    opts = TorrentPublishOptions(enabled=True)
    if "keep" in kwargs:
        opts.keep = kwargs["keep"]  # without --transmission
    if "tracker" in kwargs:
        opts.trackers = [kwargs["tracker"]]
    if "keep_zero" in kwargs:
        opts.transmission, opts.keep = "http://127.0.0.1:1/transmission/rpc", 0
    with pytest.raises(UsageError):
        opts.validate()


def _file(path, size):
    path.write_bytes(b"\x01" * size)
    return path
