"""verify.py against real repositories whose objects were tampered with on disk."""

from __future__ import annotations

import os
import subprocess
import zlib
from pathlib import Path

import pytest

from mirrorci.gitcmd import Git
from mirrorci.verify import VerificationFailed, verify, walks


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Three commits (each adds a file), an annotated tag on the first; all objects loose."""
    path = tmp_path / "r"
    _git(tmp_path, "init", "-q", "-b", "main", str(path))
    for i in range(3):
        (path / f"f{i}.txt").write_text(f"version {i}\n")
        _git(path, "add", ".")
        _git(path, "commit", "-qm", f"c{i}")
        if i == 0:
            _git(path, "tag", "-a", "-m", "first", "v0")
    return path


def _replace_loose(repo: Path, oid: str, kind: str, content: bytes) -> None:
    """Write other content under an object's id, as a forged pack index would make git read it."""
    path = repo / ".git" / "objects" / oid[:2] / oid[2:]
    os.chmod(path, 0o644)
    path.write_bytes(zlib.compress(b"%s %d\0" % (kind.encode(), len(content)) + content))


def _tips(repo: Path) -> list[str]:
    return _git(repo, "for-each-ref", "--format=%(objectname)").split()


def test_an_untouched_repository_verifies(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    found = verify(Git(repo), _tips(repo), head)
    # 3 commits + 1 tag from the history walk; commit, root tree and 3 blobs of HEAD.
    assert found.objects == 9
    assert verify(Git(repo), _tips(repo), head, "all").objects == 3 + 1 + 3 + 3


def test_a_replaced_blob_of_the_checked_out_commit_is_caught(repo: Path) -> None:
    blob = _git(repo, "rev-parse", "HEAD:f2.txt")
    _replace_loose(repo, blob, "blob", b"echo evil\n")
    with pytest.raises(VerificationFailed, match="does not hash to its id") as caught:
        verify(Git(repo), _tips(repo), _git(repo, "rev-parse", "HEAD"))
    assert caught.value.oid == blob


def test_a_replaced_commit_deep_in_history_is_caught(repo: Path) -> None:
    first = _git(repo, "rev-list", "--max-parents=0", "HEAD")
    raw = subprocess.run(["git", "-C", str(repo), "cat-file", "commit", first], check=True, capture_output=True).stdout
    _replace_loose(repo, first, "commit", raw.replace(b"c0", b"evil"))
    with pytest.raises(VerificationFailed) as caught:
        verify(Git(repo), _tips(repo), _git(repo, "rev-parse", "HEAD"))
    assert first in str(caught.value)


def test_a_replaced_tag_is_caught(repo: Path) -> None:
    tag = _git(repo, "rev-parse", "v0")
    raw = subprocess.run(["git", "-C", str(repo), "cat-file", "tag", tag], check=True, capture_output=True).stdout
    _replace_loose(repo, tag, "tag", raw.replace(b"first", b"forged"))
    with pytest.raises(VerificationFailed):
        verify(Git(repo), _tips(repo), _git(repo, "rev-parse", "HEAD"))


def test_missing_history_is_caught(repo: Path) -> None:
    parent = _git(repo, "rev-parse", "HEAD~1")
    (repo / ".git" / "objects" / parent[:2] / parent[2:]).unlink()
    with pytest.raises(VerificationFailed, match="history is not complete"):
        verify(Git(repo), _tips(repo), _git(repo, "rev-parse", "HEAD"))


def test_old_blobs_are_checked_only_in_full_scope(repo: Path) -> None:
    # f0.txt's first version is also in HEAD's tree; rewrite it so an old-only blob exists.
    (repo / "f0.txt").write_text("version 0, edited\n")
    _git(repo, "commit", "-qam", "edit f0")
    old = _git(repo, "rev-parse", "HEAD~1:f0.txt")
    _replace_loose(repo, old, "blob", b"evil\n")
    head = _git(repo, "rev-parse", "HEAD")
    verify(Git(repo), _tips(repo), head)  # relied-on: HEAD does not use that blob
    with pytest.raises(VerificationFailed):
        verify(Git(repo), _tips(repo), head, "all")


def test_scopes_are_the_documented_walks() -> None:
    assert len(walks(["a" * 40], "b" * 40, "relied-on")) == 2
    assert len(walks(["a" * 40], "b" * 40, "all")) == 1
    with pytest.raises(ValueError):
        walks([], None, "some")


def test_connected_scope_only_checks_presence(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert verify(Git(repo), _tips(repo), head, "connected").objects == 0
    blob = _git(repo, "rev-parse", "HEAD~2:f0.txt")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(VerificationFailed, match="history is not complete"):
        verify(Git(repo), _tips(repo), head, "connected")
