"""Unit tests for mirrorci.fsutil.link_or_copy: a link where possible, a copy otherwise, never a partial file."""

from __future__ import annotations

import os

import pytest

from mirrorci import fsutil


def test_links_when_it_can(tmp_path):
    src = tmp_path / "a.pack"
    src.write_bytes(b"pack bytes")
    dest = tmp_path / "cache" / "a.pack"
    dest.parent.mkdir()
    fsutil.link_or_copy(src, dest)
    assert dest.read_bytes() == b"pack bytes" and os.path.samefile(src, dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.pack"]  # no temporary file left


def test_copies_when_a_link_is_refused(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(fsutil.os, "link", no_links)
    src = tmp_path / "bundle"
    src.write_bytes(b"bundle bytes")
    dest = tmp_path / "shared" / "bundle"
    dest.parent.mkdir()
    dest.write_bytes(b"older, shorter")
    fsutil.link_or_copy(src, dest, mode=0o644)
    assert dest.read_bytes() == b"bundle bytes" and not os.path.samefile(src, dest)
    assert dest.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in dest.parent.iterdir()) == ["bundle"]


def test_a_missing_source_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "out" / "x"
    dest.parent.mkdir()
    with pytest.raises(FileNotFoundError):
        fsutil.link_or_copy(tmp_path / "missing", dest)
    assert list(dest.parent.iterdir()) == []
