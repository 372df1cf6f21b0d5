"""What a `--ref` names on origin, and where a ref lands in the clone (mirrorci.refnames)."""

from __future__ import annotations

import pytest

from mirrorci.refnames import extra_ref, resolve_ref, tracking_name, wanted_commit
from mirrorci.remote import RemoteRefs

MAIN = "1" * 40
FEATURE = "2" * 40
TAG = "3" * 40
PULL = "4" * 40
CLASH_TAG = "5" * 40
HEXY = "6" * 40
MIRROR = "7" * 40

ORIGIN = RemoteRefs(
    refs={
        "refs/heads/main": MAIN,
        "refs/heads/feature/x": FEATURE,
        "refs/heads/both": MAIN,
        "refs/heads/" + "a" * 40: HEXY,  # a branch whose name looks like an object id
        "refs/tags/v1.0": TAG,
        "refs/tags/both": CLASH_TAG,
        "refs/pull/7/merge": PULL,
        "refs/mirrors/bundle/http": MIRROR,
    },
    head_target="refs/heads/main",
    head_oid=MAIN,
)


@pytest.mark.parametrize("ref,expected", [
    ("refs/heads/main", "refs/remotes/origin/main"),
    ("refs/heads/feature/x", "refs/remotes/origin/feature/x"),
    ("refs/tags/v1.0", "refs/tags/v1.0"),
    ("refs/pull/7/merge", "refs/pull/7/merge"),
    ("refs/headsnot/main", "refs/headsnot/main"),
])
def test_tracking_name(ref, expected):
    assert tracking_name(ref) == expected


@pytest.mark.parametrize("ref,expected", [
    ("main", "refs/heads/main"),
    ("feature/x", "refs/heads/feature/x"),
    ("v1.0", "refs/tags/v1.0"),
    ("refs/heads/main", "refs/heads/main"),
    ("refs/tags/v1.0", "refs/tags/v1.0"),
    ("both", "refs/heads/both"),  # a branch and a tag of one name: the branch, as git clone --branch
    ("refs/tags/both", "refs/tags/both"),
    ("a" * 40, "refs/heads/" + "a" * 40),
    ("refs/pull/7/merge", None),  # advertised, but no branch or tag
    ("pull/7/merge", None),
    ("refs/mirrors/bundle/http", None),
    ("heads/main", None),
    ("x", None),
    (MAIN, None),  # an object id is not a ref
])
def test_resolve_ref(ref, expected):
    assert resolve_ref(ref, ORIGIN) == expected


@pytest.mark.parametrize("ref,expected", [
    ("refs/pull/7/merge", "refs/pull/7/merge"),
    ("refs/mirrors/bundle/http", "refs/mirrors/bundle/http"),
    ("refs/pull/8/merge", None),  # not advertised
    ("pull/7/merge", None),  # only a full ref name
    ("refs/heads/main", None),  # a branch is no extra ref
    ("refs/tags/v1.0", None),
    ("main", None),
    (PULL, None),
    (None, None),
    ("", None),
])
def test_extra_ref(ref, expected):
    assert extra_ref(ref, ORIGIN) == expected


@pytest.mark.parametrize("ref,expected", [
    (None, None),
    ("", None),
    ("main", None),  # a branch tip: fetched with the branches
    ("refs/tags/v1.0", None),
    ("refs/pull/7/merge", PULL),  # another ref's target
    ("9" * 40, "9" * 40),  # an object id, advertised or not
    ("9" * 64, "9" * 64),  # sha256
    ("a" * 40, None),  # the branch of that name wins over the object id
    ("9" * 39, None),  # abbreviated ids are not looked up
    ("A" * 40, None),  # git prints ids in lower case
    ("9" * 41, None),
    ("no-such-branch", None),
])
def test_wanted_commit(ref, expected):
    assert wanted_commit(ref, ORIGIN) == expected


def test_an_origin_without_refs_resolves_nothing():
    empty = RemoteRefs()
    assert resolve_ref("main", empty) is None
    assert extra_ref("refs/pull/7/merge", empty) is None
    assert wanted_commit("refs/pull/7/merge", empty) is None
    assert wanted_commit(MAIN, empty) == MAIN
