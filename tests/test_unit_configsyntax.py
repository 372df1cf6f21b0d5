"""Unit tests for mirrorci.configsyntax: our writer and parser against git's own reader."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mirrorci import configsyntax
from mirrorci.configsyntax import ConfigSyntaxError

URL_WITH_QUERY = "https://example.com/x/y.bundle?a=b&c=d#frag"

# Values that need quoting or escaping in git's config syntax (or look like they might).
TRICKY_VALUES = [
    "plain",
    "with space",
    "several   inner   spaces",
    'say "hi"',
    '"',
    "hash # inside",
    "a#b",
    "semi ; colon",
    "a;b",
    "back\\slash",
    "trailing backslash\\",
    "\\\\server\\share",
    "tab\there",
    "new\nline",
    "",
    "= equals =",
    "[not a section]",
    "unicode résumé 数据",
    URL_WITH_QUERY,
    "file:///some dir/c.bundle",
    "0",
    "true",
]

SUBSECTIONS = [
    "simple",
    "with space",
    'has "quotes"',
    "back\\slash",
    "dots.and-dashes_1",
    "#hash;semi",
]


def git_list(path: Path) -> list[tuple[str, str]]:
    """`git config -f FILE --list -z` as (key, value) pairs."""
    out = subprocess.run(["git", "config", "-f", str(path), "--list", "-z"],
                         capture_output=True, check=True).stdout.decode("utf-8")
    pairs = []
    for item in out.split("\0"):
        if item:
            key, sep, value = item.partition("\n")
            pairs.append((key, value if sep else "true"))  # a bare key is boolean true
    return pairs


def as_git_keys(entries: configsyntax.Entries) -> list[tuple[str, str]]:
    return [(f"{s}.{sub}.{k}" if sub is not None else f"{s}.{k}", v) for s, sub, k, v in entries]


# --- quote -------------------------------------------------------------------------------


def test_quote_leaves_safe_values_bare():
    assert configsyntax.quote("abc") == "abc"
    assert configsyntax.quote("https://h.example/p/a.bundle") == "https://h.example/p/a.bundle"
    assert configsyntax.quote("12345") == "12345"


@pytest.mark.parametrize("value", ["", "a b", "a#b", "a;b", 'a"b', "a\\b", "a\tb", "a\nb", URL_WITH_QUERY])
def test_quote_quotes_everything_else(value):
    q = configsyntax.quote(value)
    assert q.startswith('"') and q.endswith('"')
    assert "\n" not in q and "\t" not in q


# --- round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("value", TRICKY_VALUES, ids=repr)
def test_value_round_trip(value):
    text = configsyntax.render([("bundle", "id", [("uri", value)])])
    assert configsyntax.parse(text) == [("bundle", "id", "uri", value)]


@pytest.mark.parametrize("sub", SUBSECTIONS, ids=repr)
def test_subsection_round_trip(sub):
    text = configsyntax.render([("bundle", sub, [("uri", "x")])])
    assert configsyntax.parse(text) == [("bundle", sub, "uri", "x")]


def test_round_trip_many_sections_keeps_order_and_lowercases_names():
    sections = [
        ("bundle", None, [("version", "1"), ("mode", "all")]),
        ("bundle", "First", [("creationToken", "7"), ("uri", URL_WITH_QUERY)]),
        ("Other", "Sub Section", [("Key", "v 1")]),
    ]
    assert configsyntax.parse(configsyntax.render(sections)) == [
        ("bundle", None, "version", "1"),
        ("bundle", None, "mode", "all"),
        ("bundle", "First", "creationtoken", "7"),  # subsection keeps its case, keys do not
        ("bundle", "First", "uri", URL_WITH_QUERY),
        ("other", "Sub Section", "key", "v 1"),
    ]


OUTER_WHITESPACE = ["  leading", "trailing  ", "\tleading tab", "trailing tab\t", " ", "ends with newline\n"]
LINE_SEPARATORS = ["a\rb", "a\x0cb", "a\x85b", "a\u2028b"]


@pytest.mark.parametrize("value", OUTER_WHITESPACE + LINE_SEPARATORS, ids=repr)
def test_git_reads_rendered_outer_whitespace_and_separators_exactly(tmp_path, value):
    """What render() writes for these values is right: git reads them back unchanged."""
    path = tmp_path / "list"
    path.write_bytes(configsyntax.render([("bundle", "id", [("uri", value)])]).encode("utf-8"))
    assert git_list(path) == [("bundle.id.uri", value)]


@pytest.mark.parametrize("value", OUTER_WHITESPACE, ids=repr)
def test_round_trip_keeps_quoted_outer_whitespace(value):
    text = configsyntax.render([("bundle", "id", [("uri", value)])])
    assert configsyntax.parse(text) == [("bundle", "id", "uri", value)]


@pytest.mark.parametrize("value", LINE_SEPARATORS, ids=repr)
def test_round_trip_of_unicode_line_separators(value):
    text = configsyntax.render([("bundle", "id", [("uri", value)])])
    assert configsyntax.parse(text) == [("bundle", "id", "uri", value)]


# --- parsing hand-written text -------------------------------------------------------------


def test_parse_comments_blank_lines_and_inline_comments():
    text = (
        "# leading comment\n"
        "; another one\n"
        "\n"
        "[bundle]  # comment after a header\n"
        "\tversion = 1 ; trailing comment\n"
        "   mode=all# no space before the comment\n"
        '\turi = "https://h/x#frag" # the # inside quotes is kept\n'
        "\tflag\n"
        "\tempty =\n"
        '[bundle "x"] ; comment\n'
        '\tsize = 10\n'
    )
    assert configsyntax.parse(text) == [
        ("bundle", None, "version", "1"),
        ("bundle", None, "mode", "all"),
        ("bundle", None, "uri", "https://h/x#frag"),
        ("bundle", None, "flag", "true"),  # a bare key is boolean true, as in git
        ("bundle", None, "empty", ""),
        ("bundle", "x", "size", "10"),
    ]


def test_parse_escapes_and_partial_quoting():
    text = '[s]\n\ta = x"  y  "z\n\tb = "x\\n\\t\\b\\\\\\""\n\tc = one\\"two\n'
    assert configsyntax.parse(text) == [
        ("s", None, "a", "x  y  z"),
        ("s", None, "b", 'x\n\t\b\\"'),
        ("s", None, "c", 'one"two'),
    ]


def test_parse_section_names_are_case_insensitive_subsections_are_not():
    entries = configsyntax.parse('[BUNDLE "MiXed"]\n\tURI = x\n[Bundle]\n\tVersion = 1\n')
    assert entries == [("bundle", "MiXed", "uri", "x"), ("bundle", None, "version", "1")]


def test_parse_crlf_line_endings():
    assert configsyntax.parse("[bundle]\r\n\tversion = 1\r\n") == [("bundle", None, "version", "1")]


def test_parse_subsection_escapes():
    assert configsyntax.parse('[s "a\\"b\\\\c"]\n\tk = v\n') == [("s", 'a"b\\c', "k", "v")]


@pytest.mark.parametrize("text", [
    "[bundle\n",
    "[]\n",
    "[bad_name]\n",
    "[bundle] junk\n",
    '[bundle "unterminated]\n',
    '[bundle "x" "y"]\n',
    "[bundle x]\n",
], ids=repr)
def test_bad_section_header(text):
    with pytest.raises(ConfigSyntaxError, match="line 1: bad section header"):
        configsyntax.parse(text)


def test_key_outside_a_section():
    with pytest.raises(ConfigSyntaxError, match="line 2"):
        configsyntax.parse("# comment\nuri = x\n[bundle]\n")


@pytest.mark.parametrize("line", ["1key = x", "ke_y = x", "key : x", "-key = x", "= x"], ids=repr)
def test_bad_key(line):
    with pytest.raises(ConfigSyntaxError, match="line 2"):
        configsyntax.parse(f"[bundle]\n{line}\n")


@pytest.mark.parametrize("value", ['"open', 'a "b', '"a" "b', '"esc\\"'], ids=repr)
def test_unterminated_quote(value):
    with pytest.raises(ConfigSyntaxError, match="line 2: unterminated quote"):
        configsyntax.parse(f"[bundle]\n\turi = {value}\n")


@pytest.mark.parametrize("value", ["a\\x", '"a\\q"', "\\0", "\\ x"], ids=repr)
def test_bad_escape(value):
    with pytest.raises(ConfigSyntaxError, match="line 2: bad escape"):
        configsyntax.parse(f"[bundle]\n\turi = {value}\n")


def test_continuation_line_is_rejected():
    with pytest.raises(ConfigSyntaxError, match="line 2"):
        configsyntax.parse("[bundle]\n\turi = abc\\\n\tdef\n")


def test_config_syntax_error_is_a_value_error():
    assert issubclass(ConfigSyntaxError, ValueError)


# --- cross-check with git --------------------------------------------------------------------


def test_git_reads_what_render_wrote(tmp_path):
    sections = [("bundle", None, [("version", "1"), ("mode", "all")])]
    sections += [("bundle", f"v{i}", [("uri", v)]) for i, v in enumerate(TRICKY_VALUES)]
    sections += [("bundle", sub, [("uri", URL_WITH_QUERY), ("size", "12")]) for sub in SUBSECTIONS]
    text = configsyntax.render(sections)
    path = tmp_path / "list"
    path.write_text(text, encoding="utf-8")

    ours = as_git_keys(configsyntax.parse(text))
    theirs = git_list(path)
    assert theirs == ours
    expected = [("bundle.version", "1"), ("bundle.mode", "all")]
    expected += [(f"bundle.v{i}.uri", v) for i, v in enumerate(TRICKY_VALUES)]
    for sub in SUBSECTIONS:
        expected += [(f"bundle.{sub}.uri", URL_WITH_QUERY), (f"bundle.{sub}.size", "12")]
    assert theirs == expected


def test_git_reads_url_with_query_and_fragment(tmp_path):
    path = tmp_path / "list"
    path.write_text(configsyntax.render([("bundle", "b1", [("uri", URL_WITH_QUERY)])]))
    out = subprocess.run(["git", "config", "-f", str(path), "bundle.b1.uri"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == URL_WITH_QUERY + "\n"


def test_parse_agrees_with_git_on_hand_written_text(tmp_path):
    text = (
        "[bundle]\n"
        "\tversion = 1 # comment\n"
        "\tmode=all\n"
        '[bundle "b1"]\n'
        '\turi = "https://h/x?a=b&c=d#frag" ; comment\n'
        '\tnote = one "two  three" four\n'
        '\tesc = "\\\\ \\" \\n."\n'
        "\tflag\n"
        "[Bundle \"B2\"]\n"
        "\tURI = https://h/y\n"
    )
    path = tmp_path / "list"
    path.write_text(text)
    assert as_git_keys(configsyntax.parse(text)) == git_list(path)
