"""A mirror cannot fill the runner's disk: claimed sizes are capped and checked, and never exceeded.

The hostile host answers with a body that never ends (bounded at 64 MiB so that a
failing run stays cheap); a checkout that trusts the claim writes all of it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.attacks.helpers import (
    assert_equals_git_clone,
    assert_mirror_not_used,
    checkout_ok,
    entry_for,
    publish_list,
)
from tests.support.hostile_server import Reply

ENDLESS = 64 << 20
FEW_MB = 4 << 20  # the largest file a refused download may leave for a moment
SOCKET_SLACK = 16 << 20  # what loopback socket buffers absorb before a server notices the client stopped reading


class LargestFile:
    """Watches a directory while a checkout runs and remembers the largest file seen in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            for dirpath, _, names in os.walk(self.root):
                for name in names:
                    try:
                        self.largest = max(self.largest, os.stat(os.path.join(dirpath, name)).st_size)
                    except OSError:
                        pass

    def __enter__(self) -> LargestFile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("claim", ["bundle-over-the-cap", "bundle-over-free-space", "idx-over-the-cap"])
def test_huge_size_in_the_list_is_refused_before_writing(served_origin, hostile, legit, tmp_path, claim):
    entry = entry_for(hostile, "b", legit.bundle, legit.idx)
    extra: tuple[str, ...] = ()
    if claim == "bundle-over-free-space":
        huge = shutil.disk_usage(tmp_path).free + (10 << 30)
        extra = ("--max-bundle-size", str(10 ** 15))  # past the cap: the free-space check must refuse it
    else:
        huge = 10 ** 12
    what = "idx" if claim.startswith("idx") else "bundle"
    if what == "idx":
        entry.idx_size = huge
    else:
        entry.size = huge
    publish_list(served_origin.path, entry)
    hostile.serve(f"/b.{what}", Reply(body=legit.idx if what == "idx" else legit.bundle, endless=ENDLESS,
                                      content_length=huge))

    with LargestFile(tmp_path / "co") as watch:
        result = checkout_ok(served_origin.git_url, tmp_path / "co", *extra)

    assert hostile.bytes_sent <= SOCKET_SLACK, f"the mirror sent {hostile.bytes_sent} bytes"
    assert watch.largest <= FEW_MB, f"a {watch.largest} byte file was written under --path"
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


def test_body_longer_than_the_list_says_is_cut_off(served_origin, hostile, legit, tmp_path):
    """The list's size is right; the host sends it and then keeps going (using the first `size` bytes is fine)."""
    entry = entry_for(hostile, "b", legit.bundle, None)
    publish_list(served_origin.path, entry)
    hostile.serve("/b.bundle", Reply(body=legit.bundle, endless=ENDLESS))

    with LargestFile(tmp_path / "co") as watch:
        result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert watch.largest <= len(legit.bundle) + FEW_MB
    assert hostile.bytes_sent <= len(legit.bundle) + SOCKET_SLACK
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert result["method"] in ("http", "origin")
