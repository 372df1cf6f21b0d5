"""Apply a downloaded bundle to a repository without holding it in memory.

Two paths:
- fast: the pack bytes land in objects/pack/ beside the `.idx` that the publisher
  built, both checked against sha256 values read from origin's own refs; no index-pack.
- streaming: the pack bytes are piped into `git index-pack --stdin --fix-thin`
  while they download, so download and indexing overlap.
Either way files are written under temporary names and renamed into place only
after every check passed, so a bad download leaves nothing behind.

Both run under the attempt's Deadline (deadline.py): every read is followed by a
check, and index-pack is killed when the time is up. Before any byte is written,
`check_room` refuses a list entry larger than --max-bundle-size or than the free
space on the repository's disk; the download itself never exceeds the list's size.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .bundle import CHUNK, BundleFormatError, BundleHeader, read_header, trailing_hash
from .deadline import Deadline
from .errors import GitError, SourceFailed
from .gitcmd import Git, kill_group
from .mirrorlist import BundleEntry

Opener = Callable[[str], BinaryIO]

# Free space a download must leave: a share of its size plus a fixed margin, so the
# checkout (work tree, final fetch) still has room after the pack landed.
FREE_SPACE_SHARE = 0.05
FREE_SPACE_MARGIN = 64 << 20


def parse_size(text: str) -> int:
    """Bytes from `123`, `500M`, `20G`, `1.5T`, `64GiB` (binary units): --max-bundle-size's syntax."""
    shifts = {"K": 10, "M": 20, "G": 30, "T": 40}
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = cleaned[-1:] if cleaned[-1:] in shifts else ""
    number = cleaned[: len(cleaned) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with K, M, G or T)") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{text!r}: the size must be a positive number")
    size = int(value * (1 << shifts[unit])) if unit else int(value)
    if size < 1:
        raise ValueError(f"{text!r}: the size must be at least one byte")
    return size


def human_size(n: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def check_room(pack_dir: Path, entry: BundleEntry, max_size: int) -> None:
    """Refuse, before any byte is written, a bundle the list makes too large for the limit or the disk."""
    for what, size in (("bundle", entry.size), ("pack index", entry.idx_size)):
        if size > max_size:
            raise SourceFailed(f"the bundle list says the {what} is {size} bytes, more than "
                               f"--max-bundle-size {human_size(max_size)}")
    need = entry.size + entry.idx_size
    need += int(need * FREE_SPACE_SHARE) + FREE_SPACE_MARGIN
    try:
        free = shutil.disk_usage(pack_dir).free
    except OSError as exc:
        raise SourceFailed(f"cannot tell the free disk space in {pack_dir}: {exc.strerror}") from None
    if free < need:
        raise SourceFailed(f"not enough free disk for the {entry.size}-byte bundle: {free} bytes free, "
                           f"{need} needed with a margin")


class HashingReader(io.RawIOBase):
    """Hashes and counts every byte pulled from the network, whatever buffers sit above."""

    def __init__(
        self, raw: BinaryIO, limit: int, on_bytes: Callable[[int], None] | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0
        self.sha256 = hashlib.sha256()
        self.on_bytes = on_bytes
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.limit + 1 - self.count)
        if want <= 0:
            raise SourceFailed(f"download is longer than the {self.limit} bytes the bundle list promises")
        # read1 where the stream has it: one network read, so a mirror sending a byte at
        # a time cannot keep a single call waiting for a full buffer.
        read = getattr(self.raw, "read1", None) or self.raw.read
        data = read(want)
        if self.deadline:
            self.deadline.check("the download")
        n = len(data)
        buffer[:n] = data
        self.count += n
        self.sha256.update(data)
        if self.on_bytes and n:
            self.on_bytes(n)
        return n


@dataclass
class Applied:
    header: BundleHeader
    pack_name: str
    path: str  # "fast" or "streaming"
    bytes: int


def _check_totals(reader: HashingReader, entry: BundleEntry) -> None:
    """What was read is the bundle the list names: its size, then its sha256."""
    if reader.count != entry.size:
        raise SourceFailed(f"bundle is {reader.count} bytes, the bundle list says {entry.size} (truncated?)")
    if reader.sha256.hexdigest() != entry.sha256:
        raise SourceFailed("bundle sha256 does not match the bundle list")


def _check_prerequisites(git: Git, header: BundleHeader) -> None:
    if not header.prerequisites:
        return
    text = git.out("cat-file", "--batch-check=%(objectname) %(objecttype)",
                   input="\n".join(header.prerequisites) + "\n")
    if any(not line.endswith(" commit") for line in text.splitlines()):
        raise SourceFailed("bundle needs commits this repository does not have (prerequisites)")


def _check_object_format(git: Git, header: BundleHeader) -> None:
    repo_format = git.out("rev-parse", "--show-object-format")
    if repo_format != header.object_format:
        raise SourceFailed(f"bundle uses {header.object_format} object ids, the repository {repo_format}")


def _install(pack_dir: Path, tmp_pack: Path, tmp_idx: Path, name: str) -> None:
    """Rename pack first, idx last: git only looks at a pack once its index exists."""
    os.chmod(tmp_pack, 0o444)
    os.chmod(tmp_idx, 0o444)
    os.replace(tmp_pack, pack_dir / f"pack-{name}.pack")
    os.replace(tmp_idx, pack_dir / f"pack-{name}.idx")


def _drain_to_file(stream: BinaryIO, dest: Path) -> None:
    with dest.open("wb") as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)


def download_index(entry: BundleEntry, opener: Opener, dest: Path, deadline: Deadline | None = None) -> None:
    """Fetch the published `.idx` and check it against the list before it is used."""
    with opener(entry.idx_uri) as raw:
        reader = HashingReader(raw, entry.idx_size, deadline=deadline)
        _drain_to_file(io.BufferedReader(reader, CHUNK), dest)
    if reader.count != entry.idx_size or reader.sha256.hexdigest() != entry.idx_sha256:
        raise SourceFailed("pack index does not match its size or sha256 in the bundle list")


@dataclass
class Downloaded:
    """A bundle's pack and published index in temporary files of the pack directory, checked against the list."""

    entry: BundleEntry
    header: BundleHeader
    pack: Path
    idx: Path
    checksum: str
    bytes: int

    def discard(self) -> None:
        self.pack.unlink(missing_ok=True)
        self.idx.unlink(missing_ok=True)


def download_pair(
    pack_dir: Path, entry: BundleEntry, opener: Opener, on_bytes: Callable[[int], None] | None = None,
    deadline: Deadline | None = None,
) -> Downloaded:
    """Download a bundle's `.idx` and pack, checking sizes, sha256 values and the pack checksum."""
    token = secrets.token_hex(6)
    # Not `.idx`/`.pack`: git takes any `*.idx` with its `.pack` in this directory for a pack,
    # and these must stay invisible until they are checked and renamed into place.
    tmp_idx = pack_dir / f"tmp_mirrorci_{token}.idx-part"
    tmp_pack = pack_dir / f"tmp_mirrorci_{token}.pack-part"
    try:
        download_index(entry, opener, tmp_idx, deadline)
        with opener(entry.uri) as raw:
            reader = HashingReader(raw, entry.size, on_bytes, deadline)
            stream = io.BufferedReader(reader, CHUNK)
            header = read_header(stream)
            _drain_to_file(stream, tmp_pack)
        _check_totals(reader, entry)
        trailer = trailing_hash(tmp_pack, header.hash_len)
        idx_names = trailing_hash(tmp_idx, header.hash_len, back=2)
        if not (trailer == entry.pack_checksum == idx_names):
            raise SourceFailed("pack checksum does not match the published index")
        return Downloaded(entry, header, tmp_pack, tmp_idx, trailer, reader.count)
    except BundleFormatError as exc:
        tmp_pack.unlink(missing_ok=True)
        tmp_idx.unlink(missing_ok=True)
        raise SourceFailed(f"bad bundle: {exc}") from None
    except BaseException:
        tmp_pack.unlink(missing_ok=True)
        tmp_idx.unlink(missing_ok=True)
        raise


def install_downloaded(git: Git, got: Downloaded, alone: bool, deadline: Deadline | None = None) -> Applied:
    """Put a downloaded pack in place: with its published index when that cannot be ambiguous, else indexed by git.

    `alone`: the object store held nothing when this checkout began installing (the
    base of a chain). Otherwise the published index is used only if none of its ids
    is already present: an id with two contents would let git read either one.
    A pack that overlaps is indexed by `git index-pack`, which hashes every object
    and refuses one whose content differs from a copy already present.
    """
    pack_dir = got.pack.parent
    try:
        _check_object_format(git, got.header)
        _check_prerequisites(git, got.header)
        if alone or not overlaps(git, got.idx, got.header.hash_len):
            _install(pack_dir, got.pack, got.idx, got.checksum)
            return Applied(got.header, got.checksum, "fast", got.bytes)
        got.idx.unlink()
        git.run("index-pack", "-o", str(got.idx), str(got.pack), timeout=deadline.remaining() if deadline else None)
        _install(pack_dir, got.pack, got.idx, got.checksum)
        return Applied(got.header, got.checksum, "indexed", got.bytes)
    except GitError as exc:
        raise SourceFailed(f"index-pack rejected the pack: {exc}") from None
    finally:
        got.discard()


def idx_oids(idx: Path, hash_len: int) -> list[str]:
    """The object ids a version-2 pack index lists (its sorted id table)."""
    with idx.open("rb") as f:
        head = f.read(8 + 256 * 4)
        if len(head) != 8 + 256 * 4 or head[:4] != b"\377tOc" or head[4:8] != b"\0\0\0\2":
            raise SourceFailed("the published pack index is not a version-2 index")
        count = int.from_bytes(head[-4:], "big")
        table = f.read(count * hash_len)
    if len(table) != count * hash_len:
        raise SourceFailed("the published pack index is truncated")
    return [table[i:i + hash_len].hex() for i in range(0, len(table), hash_len)]


def overlaps(git: Git, idx: Path, hash_len: int) -> bool:
    """Whether any id the index lists is already readable in the repository (its packs or alternates)."""
    oids = idx_oids(idx, hash_len)
    if not oids:
        return False
    out = git.out("cat-file", "--batch-check=%(objectname)", input="\n".join(oids) + "\n")
    found = [line for line in out.splitlines() if not line.endswith(" missing")]
    return bool(found)


def apply_fast(
    git: Git, entry: BundleEntry, opener: Opener, on_bytes: Callable[[int], None] | None = None,
    deadline: Deadline | None = None, alone: bool = True,
) -> Applied:
    got = download_pair(git.git_path("objects/pack"), entry, opener, on_bytes, deadline)
    return install_downloaded(git, got, alone, deadline)


def _watchdog(proc: subprocess.Popen[bytes], deadline: Deadline | None) -> threading.Timer | None:
    """index-pack may stop reading (or take long resolving deltas): at the deadline it is killed,
    a blocked write then fails, and the deadline check after it names the timeout."""
    if not deadline:
        return None
    timer = threading.Timer(deadline.remaining(), kill_group, (proc,))
    timer.daemon = True
    timer.start()
    return timer


def apply_streaming(
    git: Git, entry: BundleEntry, opener: Opener, on_bytes: Callable[[int], None] | None = None, threads: int = 0,
    deadline: Deadline | None = None,
) -> Applied:
    pack_dir = git.git_path("objects/pack")
    token = secrets.token_hex(6)
    tmp_pack = pack_dir / f"tmp_mirrorci_{token}.pack"
    tmp_idx = pack_dir / f"tmp_mirrorci_{token}.idx"
    proc: subprocess.Popen[bytes] | None = None
    watchdog: threading.Timer | None = None
    try:
        with opener(entry.uri) as raw:
            reader = HashingReader(raw, entry.size, on_bytes, deadline)
            stream = io.BufferedReader(reader, CHUNK)
            header = read_header(stream)
            _check_prerequisites(git, header)
            _check_object_format(git, header)
            args = ["index-pack", "--stdin", "--fix-thin"]
            if threads:
                args.append(f"--threads={threads}")
            proc = git.popen(*args, "-o", str(tmp_idx), str(tmp_pack), stdout=subprocess.DEVNULL, new_session=True)
            assert proc.stdin is not None and proc.stderr is not None
            watchdog = _watchdog(proc, deadline)
            errors: list[bytes] = []
            # Drain stderr on the side so a chatty index-pack can never block the pipe.
            drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
            drain.start()
            try:
                # The buffered reader may already hold pack bytes read past the header:
                # reading through it (not the raw stream) keeps them.
                while chunk := stream.read(CHUNK):
                    proc.stdin.write(chunk)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        proc.wait()
        drain.join()
        if deadline:
            deadline.check("indexing the pack")
        if proc.returncode != 0:
            detail = b"".join(errors).decode("utf-8", "replace").strip().splitlines()
            raise SourceFailed(f"index-pack rejected the pack: {detail[-1] if detail else proc.returncode}")
        _check_totals(reader, entry)
        name = trailing_hash(tmp_pack, header.hash_len)
        _install(pack_dir, tmp_pack, tmp_idx, name)
        return Applied(header, name, "streaming", reader.count)
    except BundleFormatError as exc:
        raise SourceFailed(f"bad bundle: {exc}") from None
    finally:
        if watchdog:
            watchdog.cancel()
        if proc and proc.poll() is None:
            kill_group(proc)
            proc.wait()
        tmp_pack.unlink(missing_ok=True)
        tmp_idx.unlink(missing_ok=True)
