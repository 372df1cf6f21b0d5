"""Every mirror method and every store, by name: the one list to extend.

A new mirror method is one module with a `sources.base.Source` subclass (its `fetch`,
and if it needs them a `backend` declaring its options, secrets and settings, see
backend.py), plus its line in METHODS. A new store is one module with a
`store.base.Store` and its `StoreKind`, plus its line in STORES. Everything else
follows from these lists: the command line's options and --prefer's choices, the
action's inputs (derived from the command line), which inputs are secret, the
settings each back-end gets, and the checkout's cleanup after each attempt.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from urllib.parse import urlsplit

from .backend import Backend, Secret, Settings
from .errors import UsageError
from .sources.base import Source
from .sources.git_mirror import GitMirrorSource
from .sources.http import HttpSource
from .sources.s3 import S3Source
from .store import local as local_store
from .store import s3 as s3_store
from .store.base import Store, StoreKind
from .torrent.source import TorrentSource

METHODS: dict[str, Source] = {m.name: m for m in (
    HttpSource(),
    S3Source(),
    GitMirrorSource(),
    TorrentSource(),
)}
STORES: dict[str, StoreKind] = {k.scheme: k for k in (
    s3_store.KIND,
    local_store.KIND,
)}
DIRECTORY_STORE = "file"  # a --store value without a scheme is a directory path


def backends(command: str) -> list[Backend]:
    """The back-ends with options or secrets for `command`, each once (methods first, in order)."""
    unique: dict[str, Backend] = {}
    for backend in [m.backend for m in METHODS.values()] + [k.backend for k in STORES.values()]:
        if backend is not None:
            unique.setdefault(backend.name, backend)
    return [b for b in unique.values() if b.options_for(command) or secrets_of(b, command)]


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Every back-end's options for `command`, a group each."""
    for backend in backends(command):
        backend.add_arguments(parser, command)


def settings_from_args(args: argparse.Namespace, command: str) -> dict[str, object]:
    """Each back-end's settings, built from the parsed arguments (a UsageError says what to change)."""
    built = {b.name: b.build(command, args) for b in backends(command)}
    return {name: value for name, value in built.items() if value is not None}


def validate_settings(settings: Settings) -> None:
    """Refuse bad settings before any work (UsageError): each settings object checks itself."""
    for value in settings.values():
        check = getattr(value, "validate", None)
        if callable(check):
            check()


def secrets_of(backend: Backend, command: str) -> list[Secret]:
    return [s for s in backend.secrets if command in s.commands]


def secrets(command: str) -> list[Secret]:
    """The credentials the back-ends read from the environment for `command`, and the inputs that set them."""
    return [s for b in backends(command) for s in secrets_of(b, command)]


def secret_options(command: str) -> dict[str, Callable[[str], list[str]]]:
    """Options whose values hold a secret (option flag -> the parts of a value to mask)."""
    return {o.flag: o.secret_parts for b in backends(command) for o in b.options_for(command)
            if o.secret_parts is not None}


def default_preference(settings: Settings) -> list[str]:
    """--prefer's default: the methods the user set up, then those always in it, in registry order."""
    first = [m.name for m in METHODS.values() if m.default == "configured" and m.configured(settings)]
    return first + [m.name for m in METHODS.values() if m.default == "always"]


def parse_preference(text: str | None, settings: Settings) -> list[str]:
    """--prefer as a list of method names (its default when not given)."""
    if not text:
        return default_preference(settings)
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f"--prefer: unknown method {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    return methods


def prefer_help() -> str:
    """--prefer's help text, from the methods registered."""
    first = [m.name for m in METHODS.values() if m.default == "configured"]
    text = f"mirror methods to try, in order: {', '.join(METHODS)} (default: {','.join(default_preference({}))}"
    return text + (f"; {', '.join(first)} first once set up with its own options)" if first else ")")


def store_forms() -> str:
    """What --store accepts, for messages: "s3://bucket/prefix, file:///dir or a directory path"."""
    return ", ".join(k.example for k in STORES.values()) + " or a directory path"


def open_store(spec: str, settings: Settings) -> Store:
    """The store a --store value names: `<scheme>://...` for a registered scheme, or a directory path."""
    if not spec:
        raise UsageError(f"--store is required: give {store_forms()}")
    scheme = urlsplit(spec).scheme
    kind = STORES.get(scheme) if scheme else STORES[DIRECTORY_STORE]
    if kind is None and len(scheme) == 1:  # a Windows drive letter: a directory path
        kind = STORES[DIRECTORY_STORE]
    if kind is None:
        raise UsageError(f"--store {spec!r}: use {store_forms()}")
    return kind.open(spec, settings)
