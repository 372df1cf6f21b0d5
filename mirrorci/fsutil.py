"""Small file-system helpers shared by the cache and torrent seeding."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(src: Path, dest: Path, mode: int | None = None) -> None:
    """Put `src` at `dest`: a hard link where the file system allows one, else a copy.

    A link costs no space or time; across file systems (or where links are refused) the
    file is copied. Either way it is written under a temporary name beside `dest` and
    renamed over it, so a reader sees the whole file or none of it. With `mode`, the file
    gets those permissions (a link shares them with `src`, which then has them too).
    """
    tmp = dest.with_name(f".tmp-{os.getpid()}-{dest.name}")
    tmp.unlink(missing_ok=True)  # left by a killed run of a process with the same id
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
