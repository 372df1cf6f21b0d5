"""Unit tests for mirrorci.mirrorlist: bundle lists, URL lists and the refs/mirrors/* blobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mirrorci import mirrorlist
from mirrorci.bundle import file_sha256
from mirrorci.mirrorlist import (
    MAX_BLOB_BYTES,
    REF_BUNDLE_HTTP,
    REF_BUNDLE_MAGNET,
    REF_BUNDLE_TORRENT,
    REF_FETCH_GIT,
    REF_FETCH_HTTP,
    BundleEntry,
    BundleList,
    MirrorListError,
    parse_bundle_list,
    parse_mirror_blobs,
    parse_url_list,
    render_url_list,
)
from mirrorci.store import LocalStore
from tests.support.repos import git

SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4
PACK = "f" * 40


def full_entry(**changes) -> BundleEntry:
    entry = BundleEntry(
        id="repo-0123456789ab", uri="https://cdn.example/repo/bundles/x.bundle?sig=a&b=c#f", creation_token=1700000000,
        sha256=SHA_A, size=3_152_997, pack_checksum=PACK, header_size=470,
        idx_uri="https://cdn.example/repo/bundles/x.idx", idx_sha256=SHA_B, idx_size=4242,
    )
    return dataclasses.replace(entry, **changes)


def minimal_entry(**changes) -> BundleEntry:
    entry = BundleEntry(id="b1", uri="https://h.example/b1.bundle", creation_token=5, sha256=SHA_B, size=10)
    return dataclasses.replace(entry, **changes)


HEADER = "[bundle]\n\tversion = 1\n\tmode = all\n"


def list_text(**keys: str) -> str:
    """A one-bundle list with the given keys (None drops a key)."""
    base = {"uri": "https://h.example/a.bundle", "sha256": SHA_A, "size": "100", "creationToken": "3"}
    base.update(keys)
    lines = [f"\t{k} = {v}" for k, v in base.items() if v is not None]
    return HEADER + '[bundle "a"]\n' + "\n".join(lines) + "\n"


# --- BundleList render / parse ------------------------------------------------------------


def test_round_trip_full_and_minimal_entries():
    original = BundleList(bundles=[full_entry(), minimal_entry(), full_entry(id="sha256-one", object_format="sha256",
                                                                            pack_checksum="e" * 64)])
    parsed = parse_bundle_list(original.render())
    assert parsed == original


def test_render_shape():
    text = BundleList(bundles=[minimal_entry()]).render()
    assert text == (
        "[bundle]\n\tversion = 1\n\tmode = all\n\theuristic = creationToken\n"
        '[bundle "b1"]\n\turi = https://h.example/b1.bundle\n\tcreationToken = 5\n'
        f"\tsha256 = {SHA_B}\n\tsize = 10\n"
    )


def test_newest_and_has_index():
    bl = BundleList(bundles=[minimal_entry(id="old", creation_token=1), minimal_entry(id="new", creation_token=9)])
    assert bl.newest().id == "new"
    assert BundleList().newest() is None
    assert full_entry().has_index
    assert not minimal_entry().has_index
    assert not full_entry(pack_checksum="").has_index


def test_keys_are_case_insensitive():
    text = (
        "[BUNDLE]\n\tVERSION = 1\n\tMode = any\n\tHeuristic = creationToken\n"
        '[Bundle "b1"]\n\tURI = https://h.example/b\n\tCREATIONTOKEN = 4\n\tSha256 = ' + SHA_A.upper() + "\n"
        "\tSIZE = 7\n\tPACKCHECKSUM = " + PACK.upper() + "\n\tHeaderSize = 9\n"
        "\tIDXURI = https://h.example/i\n\tidxsha256 = " + SHA_B + "\n\tIdxSize = 3\n\tObjectFormat = sha1\n"
    )
    bl = parse_bundle_list(text)
    assert bl.mode == "any" and bl.heuristic == "creationToken"
    assert bl.bundles == [BundleEntry(id="b1", uri="https://h.example/b", creation_token=4, sha256=SHA_A, size=7,
                                      pack_checksum=PACK, header_size=9, idx_uri="https://h.example/i",
                                      idx_sha256=SHA_B, idx_size=3)]


def test_other_sections_and_unknown_keys_are_ignored():
    text = "[core]\n\tbare = true\n" + list_text(future="x") + '[remote "origin"]\n\turl = x\n'
    assert [b.id for b in parse_bundle_list(text).bundles] == ["a"]


def test_defaults_when_optional_keys_missing():
    b = parse_bundle_list(list_text(creationToken=None)).bundles[0]
    assert (b.creation_token, b.pack_checksum, b.idx_uri, b.idx_size, b.object_format) == (0, "", "", 0, "sha1")


@pytest.mark.parametrize("version", [None, "0", "2", "01", "true"])
def test_rejects_version_other_than_1(version):
    text = list_text().replace("\tversion = 1\n", "" if version is None else f"\tversion = {version}\n")
    with pytest.raises(MirrorListError, match="unsupported version"):
        parse_bundle_list(text)


def test_rejects_list_without_bundles():
    with pytest.raises(MirrorListError, match="names no bundles"):
        parse_bundle_list(HEADER)


@pytest.mark.parametrize("key", ["uri", "sha256", "size"])
def test_rejects_missing_required_key(key):
    with pytest.raises(MirrorListError, match=f"missing key {key}"):
        parse_bundle_list(list_text(**{key: None}))


@pytest.mark.parametrize("sha", ["a" * 63, "a" * 65, "g" * 64, "", "a" * 40, " " + "a" * 63])
def test_rejects_bad_sha256(sha):
    with pytest.raises(MirrorListError, match="sha256"):
        parse_bundle_list(list_text(sha256=f'"{sha}"'))


def test_rejects_bad_idx_sha256():
    with pytest.raises(MirrorListError, match="sha256"):
        parse_bundle_list(list_text(idxUri="https://h/i", idxSha256="xyz", idxSize="3"))


@pytest.mark.parametrize("size", ["-1", "0", "-100"])
def test_rejects_non_positive_size(size):
    with pytest.raises(MirrorListError, match="size must be positive"):
        parse_bundle_list(list_text(size=size))


@pytest.mark.parametrize("keys", [{"size": "ten"}, {"size": "1.5"}, {"creationToken": "soon"}, {"headerSize": "x"}])
def test_rejects_non_numbers(keys):
    with pytest.raises(MirrorListError, match="not a number"):
        parse_bundle_list(list_text(**keys))


@pytest.mark.parametrize("uri", ["bundles/a.bundle", "/abs/path/a.bundle", "//host/a.bundle", "a.bundle"])
def test_rejects_relative_uri(uri):
    with pytest.raises(MirrorListError, match="not absolute"):
        parse_bundle_list(list_text(uri=uri))


def test_rejects_relative_idx_uri():
    with pytest.raises(MirrorListError, match="not absolute"):
        parse_bundle_list(list_text(idxUri="x.idx", idxSha256=SHA_B, idxSize="3"))


@pytest.mark.parametrize("bundle_id", ["has space", "semi;colon", "slash/no", "quote\"d", ""])
def test_rejects_bad_id(bundle_id):
    text = list_text().replace('[bundle "a"]', '[bundle "' + bundle_id.replace('"', '\\"') + '"]')
    with pytest.raises(MirrorListError, match="bad id"):
        parse_bundle_list(text)


@pytest.mark.parametrize("checksum", ["abc", "f" * 39, "z" * 40, "f" * 41])
def test_rejects_bad_pack_checksum(checksum):
    with pytest.raises(MirrorListError, match="packChecksum"):
        parse_bundle_list(list_text(packChecksum=checksum))


def test_syntax_error_becomes_mirror_list_error():
    with pytest.raises(MirrorListError, match="bundle list: line 2"):
        parse_bundle_list('[bundle]\n\tversion = "1\n')


# --- URL lists --------------------------------------------------------------------------------


def test_parse_url_list_skips_blank_lines_and_comments():
    text = "# mirrors\n\n  https://a.example/r.git  \nhttp://b.example/r.git\n   # indented comment\ngit://c/r\n"
    assert parse_url_list(text, ("http", "https", "git")) == [
        "https://a.example/r.git", "http://b.example/r.git", "git://c/r"]


def test_parse_url_list_scheme_is_case_insensitive():
    assert parse_url_list("HTTPS://a.example/r\n", ("https",)) == ["HTTPS://a.example/r"]


@pytest.mark.parametrize("line", ["ftp://x/r", "file:///srv/r.git", "/srv/r.git", "r.git", "git@github.com:o/r.git"])
def test_parse_url_list_rejects_other_schemes(line):
    with pytest.raises(MirrorListError, match="must use one of: http, https"):
        parse_url_list(f"https://ok/r\n{line}\n", ("http", "https"))


def test_url_list_round_trip():
    urls = ["https://a/r.git", "ssh://git@b/r.git"]
    assert render_url_list(urls) == "https://a/r.git\nssh://git@b/r.git\n"
    assert parse_url_list(render_url_list(urls), ("https", "ssh")) == urls
    assert render_url_list([]) == ""
    assert parse_url_list("", ("https",)) == []


# --- parse_mirror_blobs -----------------------------------------------------------------------


def good_list() -> bytes:
    return BundleList(bundles=[minimal_entry()]).render().encode()


def test_parse_mirror_blobs_all_kinds():
    blobs = {
        REF_BUNDLE_HTTP: good_list(),
        REF_FETCH_GIT: b"git://m/r.git\nssh://m/r.git\n",
        REF_FETCH_HTTP: b"https://m/r.git\n",
        REF_BUNDLE_TORRENT: b"d8:announce...e",
        REF_BUNDLE_MAGNET: b"  magnet:?xt=urn:btih:abc\n",
    }
    ids = {ref: f"{i:040x}" for i, ref in enumerate(blobs)}
    found = parse_mirror_blobs(blobs, ids)
    assert found.warnings == []
    assert found.bundle_list.bundles == [minimal_entry()]
    assert found.git_mirrors == ["git://m/r.git", "ssh://m/r.git"]
    assert found.http_mirrors == ["https://m/r.git"]
    assert found.torrent == b"d8:announce...e"
    assert found.magnet == "magnet:?xt=urn:btih:abc"
    assert found.blob_ids == ids and found.blob_ids is not ids
    assert not found.empty
    data = found.to_json()
    assert data["bundles"][0]["sha256"] == SHA_B and data["has_torrent"] is True


def test_parse_mirror_blobs_empty():
    found = parse_mirror_blobs({}, {})
    assert found.empty and found.warnings == []


@pytest.mark.parametrize("ref,data,why", [
    (REF_BUNDLE_HTTP, b"[bundle]\n\tversion = 2\n", "unsupported version"),
    (REF_BUNDLE_HTTP, b"not [ config", "bundle list"),
    (REF_BUNDLE_HTTP, b"\xff\xfe[bundle]", "utf-8"),
    (REF_FETCH_GIT, b"ftp://m/r\n", "must use one of"),
    (REF_FETCH_HTTP, b"git://m/r\n", "must use one of: http, https"),
    (REF_FETCH_HTTP, b"https://m/\xc3(\n", "utf-8"),
    (REF_BUNDLE_MAGNET, b"https://not-a-magnet\n", "not a magnet URI"),
    (REF_BUNDLE_MAGNET, b"magnet:xt=urn:btih:abc", "not a magnet URI"),
    (REF_BUNDLE_MAGNET, b"\x80", "utf-8"),
])
def test_parse_mirror_blobs_turns_bad_blobs_into_warnings(ref, data, why):
    found = parse_mirror_blobs({ref: data, REF_BUNDLE_TORRENT: b"t"}, {})
    assert len(found.warnings) == 1
    assert found.warnings[0].startswith(f"ignoring {ref}: ")
    assert why in found.warnings[0]
    assert found.torrent == b"t"  # the other blobs are still used
    assert found.bundle_list is None and found.magnet is None


def test_one_bad_blob_does_not_hide_the_others():
    found = parse_mirror_blobs({REF_BUNDLE_HTTP: b"garbage [", REF_FETCH_HTTP: b"https://m/r\n"}, {})
    assert found.http_mirrors == ["https://m/r"]
    assert len(found.warnings) == 1 and REF_BUNDLE_HTTP in found.warnings[0]


@pytest.mark.parametrize("ref", [REF_BUNDLE_HTTP, REF_FETCH_GIT, REF_BUNDLE_TORRENT, REF_BUNDLE_MAGNET])
def test_blob_size_limit(ref):
    over = b"#" * (MAX_BLOB_BYTES + 1)
    found = parse_mirror_blobs({ref: over}, {})
    assert found.empty
    assert found.warnings == [f"ignoring {ref}: {MAX_BLOB_BYTES + 1} bytes is over the {MAX_BLOB_BYTES} byte limit"]


def test_blob_exactly_at_limit_is_accepted():
    text = b"https://m/r\n"
    at_limit = text + b"#" * (MAX_BLOB_BYTES - len(text))
    assert len(at_limit) == MAX_BLOB_BYTES
    found = parse_mirror_blobs({REF_FETCH_HTTP: at_limit}, {})
    assert found.warnings == [] and found.http_mirrors == ["https://m/r"]


# --- interop with git's own bundle-URI client -------------------------------------------------


def _bundle_with_extra_commit(sample_repo: Path, tmp_path: Path) -> tuple[Path, str]:
    """A full bundle (made by `git bundle create`) with a commit origin does not have."""
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "--no-local", str(sample_repo), str(work))
    git(work, "checkout", "-q", "-b", "only-in-bundle")
    (work / "bundle-only.txt").write_text("only in the bundle\n")
    git(work, "add", "bundle-only.txt")
    git(work, "commit", "-q", "-m", "only in the bundle")
    extra = git(work, "rev-parse", "HEAD")
    store = tmp_path / "store"
    store.mkdir()
    git(work, "bundle", "create", "-q", str(store / "full.bundle"), "--all")
    return store / "full.bundle", extra


def _clone_with_bundle_uri(list_path: Path, origin: Path, dest: Path) -> str:
    # Not as_uri(): git does not percent-decode file:// URIs, so pass the path as it is.
    return git(dest.parent, "clone", f"--bundle-uri=file://{list_path.resolve()}", str(origin), str(dest))


def test_git_clone_reads_our_bundle_list(sample_repo, origin_bare, tmp_path):
    bundle, extra = _bundle_with_extra_commit(sample_repo, tmp_path)
    entry = BundleEntry(id="full-1", uri=bundle.as_uri(), creation_token=1, sha256=file_sha256(bundle),
                        size=bundle.stat().st_size, pack_checksum="ab" * 20, header_size=400,
                        idx_uri=bundle.with_suffix(".idx").as_uri(), idx_sha256=SHA_A, idx_size=1)
    list_path = tmp_path / "store" / "bundle-list"
    list_path.write_text(BundleList(bundles=[entry]).render())

    dest = tmp_path / "dest"
    _clone_with_bundle_uri(list_path, origin_bare, dest)

    # The extra commit exists only in the bundle: git must have downloaded and unbundled it.
    git(dest, "cat-file", "-e", f"{extra}^{{commit}}")
    assert git(dest, "rev-parse", "refs/bundles/only-in-bundle") == extra
    assert git(dest, "rev-parse", "HEAD") == git(origin_bare, "rev-parse", "HEAD")
    assert git(dest, "fsck", "--no-dangling", "--no-progress") == ""


def test_git_clone_reads_a_local_store_list_when_the_path_has_a_space(sample_repo, origin_bare, tmp_path):
    bundle, extra = _bundle_with_extra_commit(sample_repo, tmp_path)
    store = LocalStore(tmp_path / "local store")
    store.put_file("r/bundles/full.bundle", bundle, "application/x-git-bundle")
    entry = BundleEntry(id="full-1", uri=store.url_for("r/bundles/full.bundle"), creation_token=1,
                        sha256=file_sha256(bundle), size=bundle.stat().st_size)
    store.put_bytes("r/bundle-list", BundleList(bundles=[entry]).render().encode(), "text/plain")

    dest = tmp_path / "dest"
    _clone_with_bundle_uri(tmp_path / "local store" / "r" / "bundle-list", origin_bare, dest)
    assert git(dest, "cat-file", "-t", extra, check=False) == "commit"


def test_our_parser_reads_lists_with_the_bundle_only_keys_git_uses(tmp_path):
    """A list git would accept (no integrity keys) still needs sha256/size for us."""
    with pytest.raises(MirrorListError, match="missing key sha256"):
        parse_bundle_list(HEADER + '[bundle "a"]\n\turi = https://h/a.bundle\n')


def test_module_constants():
    assert mirrorlist.MIRROR_REF_PREFIX == "refs/mirrors/"
    assert all(r.startswith(mirrorlist.MIRROR_REF_PREFIX)
               for r in (REF_BUNDLE_HTTP, REF_BUNDLE_TORRENT, REF_BUNDLE_MAGNET, REF_FETCH_GIT, REF_FETCH_HTTP))


@pytest.mark.parametrize("uri", ['"http://a/b\\nc"', "http://a b/x", "http://h:xx/x", "http://[::1/x", "s3:///k", "s3://bucket"])
def test_malformed_bundle_uris_are_refused_when_parsed(uri):
    with pytest.raises(MirrorListError):
        parse_bundle_list(list_text(uri=uri))


@pytest.mark.parametrize("url", ["http://[::1/x", "http://h:99999/r", "https://a b/r"])
def test_malformed_mirror_urls_are_refused_when_parsed(url):
    with pytest.raises(MirrorListError):
        parse_url_list(url + "\n", ("http", "https"))
