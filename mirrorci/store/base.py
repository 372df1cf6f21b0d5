"""The interface every store (local directory, S3) implements, and how one is chosen.

Each store module declares a `StoreKind`: the --store URL scheme that selects it, and
how to open it with the parsed settings; registry.py lists them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..backend import Backend, Settings

Progress = Callable[[int], None]


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's root, like every key
    size: int
    modified: float  # seconds since the epoch (the store's last-modified time)


class Store(Protocol):
    """A place artifacts are written to, with keys relative to the store's root."""

    def describe(self) -> str:
        """A short, secret-free name for logs."""

    def check(self) -> None:
        """Fail early, before any work, if the store cannot be written (UsageError says what to fix)."""

    def put_file(self, key: str, path: Path, content_type: str, progress: Progress | None = None) -> None:
        """Upload a file; when this returns the object is complete at its key."""

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def size_of(self, key: str) -> int | None:
        """Size of the object at key, or None if there is none."""

    def read_prefix(self, key: str, length: int) -> bytes | None:
        """The first `length` bytes of an object (a bundle's header), or None if it is not there."""

    def url_for(self, key: str) -> str:
        """The URL a client without a public base URL would use (file:// or s3://)."""

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with `prefix` (a folder-like prefix ending in '/')."""

    def delete(self, keys: builtins.list[str]) -> dict[str, str]:
        """Delete objects; returns key -> reason for each one that could not be deleted.

        A missing key is no failure."""


@dataclass(frozen=True)
class StoreKind:
    """A kind of store, as the registry lists it."""

    scheme: str  # `--store <scheme>://...` selects it
    example: str  # the --store form, for messages: "s3://bucket/prefix"
    open: Callable[[str, Settings], Store]  # (--store value, every back-end's settings) -> the store
    backend: Backend | None = None  # the options, secrets and settings it declares (None: it has none)
