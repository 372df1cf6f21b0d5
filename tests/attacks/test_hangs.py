"""A mirror cannot keep a job running: drips, silent ports, and a job killed mid-download.

Every checkout here runs with `--timeout 5 --stall-timeout 2`; the subprocess bound
(60 s) only turns a hang into a failure. A mirror that drips one byte a second never
trips a stall limit, so only a deadline for the whole attempt ends it.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from mirrorci.mirrorlist import REF_FETCH_GIT, REF_FETCH_HTTP
from tests.attacks.helpers import (
    assert_equals_git_clone,
    assert_mirror_not_used,
    checkout_cmd,
    checkout_ok,
    entry_for,
    kill_group,
    leftovers,
    publish_bundle,
    publish_list,
    set_mirror_blob,
)
from tests.support.hostile_server import Reply


def _dripping(body: bytes, after: int = 0) -> Reply:
    return Reply(body=body, drip=1.0, drip_after=after)


@pytest.mark.slow  # waits out --timeout
@pytest.mark.parametrize("what", ["bundle", "idx"])
def test_mirror_that_drips_one_byte_a_second(served_origin, hostile, legit, tmp_path, what):
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    # Headers and most of the file at once, then a byte a second: progress, but never the end.
    body = legit.bundle if what == "bundle" else legit.idx
    hostile.serve(f"/b.{what}", _dripping(body, after=len(body) // 2))

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert hostile.requested(f"/b.{what}")
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


@pytest.mark.slow  # waits out --timeout
@pytest.mark.parametrize("kind", ["git", "http"])
def test_git_mirror_that_accepts_and_never_answers(served_origin, silent, tmp_path, kind):
    ref = REF_FETCH_GIT if kind == "git" else REF_FETCH_HTTP
    set_mirror_blob(served_origin.path, ref, f"{kind}://127.0.0.1:{silent.port}/x.git\n")

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--prefer", "git")

    assert silent.accepted, "the silent mirror was never contacted"
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result, "git")


@pytest.mark.slow  # waits out --stall-timeout
def test_bundle_host_that_accepts_and_never_answers(served_origin, hostile, silent, legit, tmp_path):
    entry = entry_for(hostile, "b", legit.bundle, None, uri=f"http://127.0.0.1:{silent.port}/b.bundle")
    publish_list(served_origin.path, entry)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert silent.accepted
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


@pytest.mark.parametrize("sig,existed,apply_path", [
    (signal.SIGTERM, False, "fast"), (signal.SIGTERM, True, "fast"), (signal.SIGINT, False, "fast"),
    (signal.SIGTERM, False, "streaming"),
], ids=["sigterm-new-path", "sigterm-empty-path", "sigint-new-path", "sigterm-streaming"])
def test_signal_during_a_download_leaves_nothing_behind(
    served_origin, hostile, legit, tmp_path, sig, existed, apply_path
):
    """The CI system cancels the job: temporary files go, and --path is as it was before."""
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx if apply_path == "fast" else None)
    quick = len(legit.header) + 256 * 1024  # the header and some pack bytes arrive at once, then a drip
    hostile.serve("/b.bundle", _dripping(legit.bundle, after=quick))
    path = tmp_path / "co"
    if existed:
        path.mkdir()
    # A deadline far away: the signal, not --timeout, must end this checkout.
    proc = subprocess.Popen(checkout_cmd(served_origin.git_url, path, "--timeout", "120"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        sent_before_drip = quick + (len(legit.idx) if apply_path == "fast" else 0)
        downloading = _wait(lambda: hostile.bytes_sent >= sent_before_drip + 2, bound=30)
        assert proc.poll() is None, f"checkout ended before the signal: {proc.communicate()[1][-2000:]}"
        assert downloading, "the checkout never started downloading the bundle"
        proc.send_signal(sig)  # to the checkout only, as a runner's cancel does first
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("checkout did not exit within 30 s of the signal")
    finally:
        if proc.poll() is None:
            kill_group(proc)

    assert proc.returncode != 0
    assert "Traceback (most recent call last)" not in stderr, stderr
    assert leftovers(tmp_path) == []
    if existed:
        assert path.is_dir() and sorted(p.name for p in path.iterdir()) == []
    else:
        assert not path.exists(), sorted(str(p.relative_to(path)) for p in path.rglob("*"))[:20]


def _wait(condition, bound: float) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it holds or ``bound`` seconds pass (a wait, not a timed assertion)."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())
