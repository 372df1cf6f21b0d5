"""Where published artifacts are written: a local directory or an S3 bucket.

One module per kind of store, each declaring its `StoreKind`; registry.py lists them
and opens the one a --store value names (`registry.open_store`).
"""

from __future__ import annotations

from .base import Store, StoredObject, StoreKind
from .local import LocalStore
from .s3 import S3Store

__all__ = ["Store", "StoredObject", "StoreKind", "LocalStore", "S3Store"]
