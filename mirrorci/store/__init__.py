"""Where published artifacts are written: a local directory or an S3 bucket."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from ..s3config import S3Options
from .base import Store
from .local import LocalStore
from .s3 import S3Store

__all__ = ["Store", "LocalStore", "S3Store", "open_store"]


def open_store(spec: str, s3: S3Options | None = None) -> Store:
    """`s3://bucket/prefix`, `file:///dir` or a plain directory path."""
    if not spec:
        raise UsageError("--store is required: give s3://bucket/prefix or a local directory")
    scheme = urlsplit(spec).scheme
    if scheme == "s3":
        return S3Store(spec, s3 or S3Options())
    if scheme == "file":
        return LocalStore(Path(unquote(urlsplit(spec).path)))
    if scheme and len(scheme) > 1:
        raise UsageError(f"--store {spec!r}: use s3://bucket/prefix, file:///dir or a directory path")
    return LocalStore(Path(spec))
