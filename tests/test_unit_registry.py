"""Unit tests for the back-end registry: a mirror method or a store is one module plus one registry line.

The command line's options, --prefer, the action's inputs, the secrets, the settings a
back-end gets and the cleanup after each attempt all follow from registry.py; a
method or store registered here (as a new module would be) is used by a real
checkout or publish without any other change.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from mirrorci import cli, registry
from mirrorci.backend import Backend, Secret, option, setting
from mirrorci.checkout import CheckoutOptions, checkout
from mirrorci.errors import SourceFailed, UsageError
from mirrorci.publish import PublishOptions, publish
from mirrorci.s3config import S3Options
from mirrorci.sources.base import FetchContext, Fetched, Source
from mirrorci.sources.http import HttpSource
from mirrorci.store import LocalStore, S3Store
from mirrorci.store.base import StoreKind
from mirrorci.torrent.options import TorrentOptions, url_password
from mirrorci.torrent.publishing import TorrentPublishOptions
from tests.support.repos import git


@dataclass
class CarrierOptions:
    speed: int = 1


def _carrier_settings(command: str, args: argparse.Namespace) -> CarrierOptions:
    if args.carrier_speed < 1:
        raise UsageError("--carrier-speed must be 1 or more")
    return CarrierOptions(args.carrier_speed)


CARRIER = Backend(
    name="carrier",
    titles={"checkout": "Carrier pigeons"},
    options=(option("--carrier-speed", "checkout", type=int, default=1, help="birds per hour"),),
    build=_carrier_settings,
    secrets=(Secret("carrier-key", "MIRRORCI_CARRIER_KEY"),),
)


class CarrierSource(Source):
    """A method that never delivers: each attempt is a fallback, and its cleanup is recorded."""

    name = "carrier"
    backend = CARRIER
    default = "named"

    def __init__(self) -> None:
        self.seen: list[CarrierOptions] = []
        self.cleaned = 0

    def fetch(self, ctx: FetchContext) -> Fetched:
        self.seen.append(setting(ctx.settings, CARRIER.name, CarrierOptions))
        raise SourceFailed("the pigeon did not come back")

    def cleanup(self, ctx: FetchContext) -> None:
        self.cleaned += 1


class CountedHttp(HttpSource):
    name = "counted-http"
    default = "named"
    cleaned = 0

    def cleanup(self, ctx: FetchContext) -> None:
        type(self).cleaned += 1


@pytest.fixture
def carrier(monkeypatch: pytest.MonkeyPatch) -> CarrierSource:
    """The carrier method, registered the way a new module would be: one line in METHODS."""
    source = CarrierSource()
    monkeypatch.setitem(registry.METHODS, source.name, source)
    return source


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


# --- what the registry holds --------------------------------------------------------------------


def test_every_method_and_store_is_registered_under_its_own_name():
    assert list(registry.METHODS) == ["http", "s3", "git", "torrent"]
    assert all(isinstance(m, Source) and m.name == key for key, m in registry.METHODS.items())
    assert {key: kind.scheme for key, kind in registry.STORES.items()} == {"s3": "s3", "file": "file"}
    assert [b.name for b in registry.backends("checkout")] == ["s3", "torrent"]
    assert [b.name for b in registry.backends("publish")] == ["s3", "torrent"]


def test_default_preference_puts_a_configured_torrent_client_first():
    assert registry.parse_preference(None, {}) == ["http", "s3", "git"]
    assert registry.parse_preference("", {"torrent": TorrentOptions()}) == ["http", "s3", "git"]
    configured = {"torrent": TorrentOptions(transmission="http://daemon:9091/transmission/rpc")}
    assert registry.parse_preference(None, configured) == ["torrent", "http", "s3", "git"]
    assert registry.parse_preference(None, {"torrent": TorrentOptions(client="embedded")})[0] == "torrent"
    assert registry.parse_preference(" GIT, http ", {}) == ["git", "http"]


def test_an_unknown_method_is_refused_naming_every_registered_one():
    with pytest.raises(UsageError) as err:
        registry.parse_preference("http,carrier-pigeon", {})
    assert "carrier-pigeon" in str(err.value) and "http, s3, git, torrent" in str(err.value)
    with pytest.raises(UsageError, match="--prefer"):
        registry.parse_preference(",", {})


def test_prefer_help_lists_the_registered_methods():
    text = registry.prefer_help()
    assert "http, s3, git, torrent" in text and "default: http,s3,git" in text and "torrent first" in text


def test_the_command_line_takes_every_back_end_option_and_builds_its_settings():
    args = parse("checkout", "https://h/r.git", "--s3-region", "eu-west-1", "--torrent-timeout", "12")
    settings = registry.settings_from_args(args, "checkout")
    assert settings["s3"] == S3Options(region="eu-west-1")
    assert isinstance(settings["torrent"], TorrentOptions) and settings["torrent"].time_limit == 12
    args = parse("publish", "--store", "s", "--tracker", "udp://t:1/announce", "--s3-part-size", "8")
    settings = registry.settings_from_args(args, "publish")
    assert setting(settings, "s3", S3Options).part_size_mb == 8
    assert setting(settings, "torrent", TorrentPublishOptions).trackers == ["udp://t:1/announce"]
    with pytest.raises(SystemExit):  # a checkout option is no publish option
        parse("publish", "--store", "s", "--torrent-timeout", "12")


def test_settings_check_themselves():
    registry.validate_settings({"s3": S3Options(), "torrent": TorrentOptions()})
    with pytest.raises(UsageError, match="--s3-part-size"):
        registry.validate_settings({"s3": S3Options(part_size_mb=1)})
    with pytest.raises(UsageError, match="--torrent-client"):
        registry.validate_settings({"torrent": TorrentOptions(client="transmission")})


def test_setting_gives_defaults_and_refuses_another_back_ends_settings():
    assert setting({}, "s3", S3Options) == S3Options()
    with pytest.raises(TypeError, match="s3"):
        setting({"s3": TorrentOptions()}, "s3", S3Options)


def test_secrets_are_declared_by_their_back_ends():
    declared = {s.input: (s.env, s.masked) for s in registry.secrets("checkout")}
    assert declared == {
        "aws-access-key-id": ("AWS_ACCESS_KEY_ID", True),
        "aws-secret-access-key": ("AWS_SECRET_ACCESS_KEY", True),
        "aws-session-token": ("AWS_SESSION_TOKEN", True),
        "transmission-user": ("MIRRORCI_TRANSMISSION_USER", False),
        "transmission-password": ("MIRRORCI_TRANSMISSION_PASSWORD", True),
    }
    parts = registry.secret_options("publish")["--transmission"]
    assert parts("http://u:p%40ss@daemon:9091/transmission/rpc") == ["p%40ss", "p@ss"]
    assert url_password("daemon:9091") == [] and url_password("http://[bad") == []


# --- stores -------------------------------------------------------------------------------------


def test_open_store_by_scheme(tmp_path):
    assert isinstance(registry.open_store(str(tmp_path / "a"), {}), LocalStore)
    local = registry.open_store((tmp_path / "with space").as_uri(), {})
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "with space").resolve()
    assert isinstance(registry.open_store("C:\\mirrors", {}), LocalStore)  # a drive letter is no scheme
    s3 = registry.open_store("s3://bucket/pre/fix", {"s3": S3Options(region="us-east-1", part_size_mb=8)})
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix, s3.part_size) == ("bucket", "pre/fix", 8 << 20)


def test_open_store_says_what_it_accepts():
    with pytest.raises(UsageError) as err:
        registry.open_store("ftp://host/dir", {})
    assert str(err.value) == "--store 'ftp://host/dir': use s3://bucket/prefix, file:///dir or a directory path"
    with pytest.raises(UsageError, match="--store is required"):
        registry.open_store("", {})


def test_a_store_registered_in_one_line_is_published_to(origin_bare, tmp_path, monkeypatch):
    """A new kind of store: its module's StoreKind, one line in STORES, and publish writes to it."""
    root = tmp_path / "bucket"
    kind = StoreKind(scheme="vault", example="vault://name",
                     open=lambda spec, settings: LocalStore(root / urlsplit(spec).netloc))
    monkeypatch.setitem(registry.STORES, kind.scheme, kind)
    assert "vault://name" in registry.store_forms()
    summary = publish(PublishOptions(store="vault://mirrors", repo=origin_bare, push=False))
    assert summary["bundle"]["url"].startswith((root / "mirrors").resolve().as_uri())
    assert list((root / "mirrors").rglob("*.bundle"))


# --- a new mirror method ------------------------------------------------------------------------


def test_a_method_registered_in_one_line_gets_options_inputs_and_secrets(carrier):
    from mirrorci.ci.inputs import input_specs

    args = parse("checkout", "https://h/r.git", "--carrier-speed", "3", "--prefer", "carrier,http")
    assert registry.settings_from_args(args, "checkout")["carrier"] == CarrierOptions(3)
    assert "carrier-speed" in {spec.name for spec in input_specs("checkout")}  # the action input follows
    assert "carrier-speed" not in {spec.name for spec in input_specs("publish")}
    assert ("carrier-key", "MIRRORCI_CARRIER_KEY") in {(s.input, s.env) for s in registry.secrets("checkout")}
    assert "carrier" in registry.prefer_help() and registry.parse_preference(None, {}) == ["http", "s3", "git"]
    with pytest.raises(UsageError, match="--carrier-speed"):
        registry.settings_from_args(parse("checkout", "u", "--carrier-speed", "0"), "checkout")


def test_a_checkout_tries_a_registered_method_and_cleans_up_after_every_attempt(carrier, origin_bare, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setitem(registry.METHODS, CountedHttp.name, CountedHttp())
    monkeypatch.setattr(CountedHttp, "cleaned", 0)
    publish(PublishOptions(store=str(tmp_path / "store"), repo=origin_bare, push=False))
    result = checkout(CheckoutOptions(
        remote_url=str(origin_bare), path=tmp_path / "co", prefer="carrier,counted-http", allow_file_urls=True,
        settings={"carrier": CarrierOptions(speed=5)},
    ))
    assert carrier.seen == [CarrierOptions(speed=5)]  # its own settings, from the generic mapping
    assert result.fallbacks == [{"method": "carrier", "reason": "the pigeon did not come back"}]
    assert result.method == "counted-http" and not result.final_fetch
    assert (carrier.cleaned, CountedHttp.cleaned) == (1, 1)  # after the failed attempt and the good one
    assert git(tmp_path / "co", "rev-parse", "HEAD") == git(origin_bare, "rev-parse", "HEAD")
