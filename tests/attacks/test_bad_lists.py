"""Malformed input from refs/mirrors/* or a bundle header is a fallback, never exit 1 or 2.

Only the user's own options may end a checkout with a usage error; anything a writer
of refs/mirrors/* or a mirror host controls must end in a clone equal to git clone's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorci.mirrorlist import REF_BUNDLE_HTTP, REF_FETCH_GIT, REF_FETCH_HTTP, parse_bundle_list
from tests.attacks.helpers import (
    assert_accounted,
    assert_equals_git_clone,
    assert_mirror_not_used,
    checkout_ok,
    entry_for,
    publish_bundle,
    publish_list,
    set_mirror_blob,
)
from tests.support import forge
from tests.support.e2e import publish_to_static
from tests.support.repos import advance_origin, git

MISSING = "1" * 40

HEADER_LINES = {
    "ref-to-missing-object": [f"{MISSING} refs/heads/ghost"],
    "dot-dot": ["{main} refs/heads/a..b"],
    "space": ["{main} refs/heads/with space"],
    "d-f-conflict": ["{main} refs/heads/x", "{main} refs/heads/x/y"],
    "lock": ["{main} refs/heads/evil.lock"],
    "escape": ["{main} refs/tags/../../HEAD"],
    "control-character": ["{main} refs/heads/bell\a"],
    "outside-heads-and-tags": ["{main} refs/remotes/origin/main", "{main} HEAD"],
    "main-moved": ["{develop} refs/heads/main"],  # a second, different tip for origin's main
}


@pytest.mark.parametrize("case,apply_path", [
    *((case, "fast") for case in sorted(HEADER_LINES)),
    ("ref-to-missing-object", "streaming"), ("d-f-conflict", "streaming")
])
def test_extra_header_line(served_origin, hostile, legit, tmp_path, case, apply_path):
    tips = {name: git(served_origin.path, "rev-parse", name) for name in ("main", "develop")}
    extra = [line.format(**tips).encode() for line in HEADER_LINES[case]]
    bundle = forge.make_header(forge.header_lines(legit.header) + extra) + legit.pack
    publish_bundle(served_origin.path, hostile, bundle, legit.idx if apply_path == "fast" else None)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert hostile.requested("/b.bundle")
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_accounted(result)


def test_header_says_sha256_for_a_sha1_origin(served_origin, hostile, legit, tmp_path):
    # The same refs with 64-digit ids: a well-formed v3 header in the other object format.
    refs = [line.split(b" ", 1) for line in forge.header_lines(legit.header)]
    padded = [oid + b"0" * 24 + b" " + ref for oid, ref in refs]
    bundle = forge.make_header(padded, b"# v3 git bundle\n@object-format=sha256\n") + legit.pack
    publish_bundle(served_origin.path, hostile, bundle, legit.idx)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


URIS = {
    "newline": ("uri", "{url}/b\n.bundle"),
    "space": ("uri", "{url}/a b.bundle"),
    "port-not-a-number": ("uri", "http://127.0.0.1:port/b.bundle"),
    "bad-ipv6": ("uri", "http://[::1/x"),
    "idx-bad-ipv6": ("idx_uri", "http://[::1/x"),
    "s3-no-bucket": ("uri", "s3:///k"),
    "s3-bad-ipv6": ("uri", "s3://[::1/k"),
    "ftp": ("uri", "ftp://127.0.0.1/b.bundle"),
    "huge-port": ("uri", "http://127.0.0.1:99999999/b.bundle"),
}


@pytest.mark.parametrize("case", sorted(URIS))
def test_malformed_uri_in_the_list(served_origin, hostile, legit, tmp_path, case):
    key, template = URIS[case]
    entry = entry_for(hostile, "b", legit.bundle, legit.idx)
    setattr(entry, key, template.format(url=hostile.url))
    publish_list(served_origin.path, entry)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


FETCH_URLS = {
    "bad-ipv6": (REF_FETCH_GIT, "http://[::1/x"),
    "port-not-a-number": (REF_FETCH_GIT, "git://127.0.0.1:port/x.git"),
    "http-bad-ipv6": (REF_FETCH_HTTP, "https://[::1/x"),
    "ext-transport": (REF_FETCH_GIT, "ext::sh -c touch% {marker}"),
    "ssh-proxy-command": (REF_FETCH_GIT, "ssh://-oProxyCommand=touch%20{marker}/x"),
}


@pytest.mark.parametrize("case", sorted(FETCH_URLS))
def test_malformed_git_mirror_url(served_origin, tmp_path, case):
    ref, template = FETCH_URLS[case]
    marker = tmp_path / "pwned"
    set_mirror_blob(served_origin.path, ref, template.format(marker=marker) + "\n")

    result = checkout_ok(served_origin.git_url, tmp_path / "co", "--prefer", "git")

    assert not marker.exists(), "a mirror URL ran a command"
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result, "git")


GARBAGE = {
    "binary": os.urandom(4096),
    "not-config": b"\x00\x01[bundle\n\turi\n" * 50,
    "numbers-not-numbers": b'[bundle]\n\tversion = 1\n[bundle "b"]\n\turi = http://127.0.0.1:1/b\n\tsize = 12abc\n',
    "over-a-megabyte": b"[bundle]\n\tversion = 1\n" + b"# padding\n" * 120_000,
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_bundle_list_blob(served_origin, tmp_path, case):
    set_mirror_blob(served_origin.path, REF_BUNDLE_HTTP, GARBAGE[case])

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_mirror_not_used(result)


def test_absurd_header_size_in_a_usable_entry(served_origin, hostile, legit, tmp_path):
    """A number the checkout does not need to trust must not crash it either."""
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx, header_size=99_999_999_999)

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_accounted(result)


def test_the_mirror_ref_is_not_a_blob(served_origin, tmp_path):
    """refs/mirrors/bundle/http names a commit (or a tree): origin's objects, not a list."""
    git(served_origin.path, "update-ref", REF_BUNDLE_HTTP, git(served_origin.path, "rev-parse", "main"))
    git(served_origin.path, "update-ref", REF_FETCH_GIT, git(served_origin.path, "rev-parse", "main^{tree}"))

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_accounted(result)


def _add_packed_refs(repo: Path, refs: dict[str, str]) -> None:
    """Add many refs at once by rewriting packed-refs (what `git pack-refs` would leave)."""
    git(repo, "pack-refs", "--all")
    path = repo / "packed-refs"
    records: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("^"):
            assert current is not None
            records[current].append(line)
            continue
        current = line.split(" ", 1)[1]
        records[current] = [line]
    for name, oid in refs.items():
        records[name] = [f"{oid} {name}"]
    lines = ["# pack-refs with: peeled fully-peeled sorted "]
    for name in sorted(records):
        lines += records[name]
    path.write_text("\n".join(lines) + "\n")


def test_a_hundred_thousand_refs_under_refs_mirrors(served_origin, hostile, legit, tmp_path):
    """Issue case 6: 'Argument list too long' when every refs/mirrors/* ref was read."""
    publish_bundle(served_origin.path, hostile, legit.bundle, legit.idx)
    blob = git(served_origin.path, "rev-parse", REF_BUNDLE_HTTP)
    _add_packed_refs(served_origin.path, {f"refs/mirrors/junk/{n:06d}": blob for n in range(100_000)})
    assert len(git(served_origin.path, "for-each-ref", "--format=x", "refs/mirrors/junk/").split()) == 100_000

    result = checkout_ok(served_origin.git_url, tmp_path / "co")

    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
    assert_accounted(result)


def test_publish_survives_a_previous_list_with_a_huge_header_size(served_origin, static_server, tmp_path):
    """Issue case 6, publish side: a previous list's claims are read with a small bound."""
    first = publish_to_static(served_origin, static_server, tmp_path)
    text = git(served_origin.path, "cat-file", "blob", REF_BUNDLE_HTTP) + "\n"
    listed = parse_bundle_list(text)
    for entry in listed.bundles:
        entry.header_size = 99_999_999_999
    set_mirror_blob(served_origin.path, REF_BUNDLE_HTTP, listed.render())
    advance_origin(served_origin.path, tmp_path / "advance")
    (tmp_path / "again").mkdir()

    work = tmp_path / "again" / "publisher"
    git(tmp_path / "again", "clone", "-q", "--mirror", served_origin.git_url, str(work))
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorci", "publish", "--repo", str(work), "--store",
         str(static_server.root / first["prefix"]), "--public-url", f"{static_server.url}/{first['prefix']}", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = checkout_ok(served_origin.git_url, tmp_path / "co")
    assert result["method"] == "http"
    assert_equals_git_clone(served_origin.git_url, tmp_path / "co")
