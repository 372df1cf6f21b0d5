"""A local directory as a store: the embedded default, no account needed."""

from __future__ import annotations

import builtins
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..backend import Settings
from ..errors import MirrorciError, UsageError
from .base import Progress, StoredObject, StoreKind

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
        def chunks() -> Iterator[bytes]:
            with path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    yield chunk
                    if progress:
                        progress(len(chunk))

        self._write(key, chunks())

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write(key, iter([data]))

    def _write(self, key: str, chunks: Iterator[bytes]) -> None:
        """Write beside the target and rename: readers never see a half-written file.

        A failed write (a full disk, a quota, an I/O error) removes its temporary file
        and is one line saying what to do; the caller has not moved any ref yet.
        """
        dest = self._path(key)
        tmp: str | None = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException as exc:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise MirrorciError(_write_failure(self.root, key, exc)) from None
            raise

    def size_of(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def read_prefix(self, key: str, length: int) -> bytes | None:
        try:
            with self._path(key).open("rb") as f:
                return f.read(length)
        except OSError:
            return None

    def list(self, prefix: str) -> list[StoredObject]:
        top = self._path(prefix.rstrip("/") or ".") if prefix.strip("/") else self.root
        if not top.is_dir():
            return []
        found = []
        for dirpath, _, filenames in os.walk(top):
            for filename in filenames:
                path = Path(dirpath) / filename
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    st = path.lstat()
                except OSError:
                    continue  # removed meanwhile
                if stat.S_ISREG(st.st_mode):
                    found.append(StoredObject(key, st.st_size, st.st_mtime))
        return sorted(found, key=lambda o: o.key)

    def delete(self, keys: builtins.list[str]) -> dict[str, str]:
        failed = {}
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except (OSError, ValueError) as exc:
                failed[key] = getattr(exc, "strerror", None) or str(exc)
        return failed

    def url_for(self, key: str) -> str:
        # Not percent-encoded: git's bundle-URI code takes file:// paths literally.
        return "file://" + str(self._path(key))


def open_local(spec: str, settings: Settings) -> LocalStore:
    """`file:///dir` (percent-encoded, as a URL is) or a plain directory path."""
    if urlsplit(spec).scheme == "file":
        return LocalStore(Path(unquote(urlsplit(spec).path)))
    return LocalStore(Path(spec))


KIND = StoreKind(scheme="file", example="file:///dir", open=open_local)


def _write_failure(root: Path, key: str, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"--store {root}: no space left on device while writing {key}; free space or choose another store"
    return f"--store {root}: cannot write {key}: {exc.strerror or exc}"
