"""A local directory as a store: the embedded default, no account needed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import UsageError
from .base import Progress

CHUNK = 1 << 20


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--store {self.root}: cannot create the directory ({exc.strerror})") from None
        if not os.access(self.root, os.W_OK):
            raise UsageError(f"--store {self.root}: directory is not writable")

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key {key!r} escapes the store")
        return path

    def put_file(self, key: str, path: Path, content_type: str, progress: Progress | None = None) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: readers never see a half-written file.
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            self.put_file(key, Path(tmp.name), content_type)
        finally:
            os.unlink(tmp.name)

    def size_of(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def read_prefix(self, key: str, length: int) -> bytes | None:
        try:
            with self._path(key).open("rb") as f:
                return f.read(length)
        except OSError:
            return None

    def url_for(self, key: str) -> str:
        # Not percent-encoded: git's bundle-URI code takes file:// paths literally.
        return "file://" + str(self._path(key))

    def remove_tree(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
