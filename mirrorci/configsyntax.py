"""Read and write the subset of git's config syntax that bundle lists use.

A bundle list lives in a ref blob and on a web server, and git's own bundle-URI
code reads the same text, so we write it in git's syntax and parse it without
shelling out (the blob may come from an untrusted mirror list cache).
"""

from __future__ import annotations

import re

_SECTION = re.compile(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(?:[#;].*)?$')
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")

Entries = list[tuple[str, str | None, str, str]]  # (section, subsection, key, value)


class ConfigSyntaxError(ValueError):
    pass


def parse(text: str) -> Entries:
    entries: Entries = []
    section: tuple[str, str | None] | None = None
    # Only "\n" ends a line for git (a "\r" before it is dropped); other Unicode
    # line breaks are ordinary characters inside a value.
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r").strip(" \t")
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _SECTION.match(line)
            if not match:
                raise ConfigSyntaxError(f"line {number}: bad section header")
            sub = match.group(2)
            section = (match.group(1).lower(), re.sub(r"\\(.)", r"\1", sub) if sub is not None else None)
            continue
        match = _KEY.match(line)
        if not match or section is None:
            raise ConfigSyntaxError(f"line {number}: expected 'key = value' inside a section")
        value = "true" if match.group(2) is None else _value(match.group(2), number)
        entries.append((section[0], section[1], match.group(1).lower(), value))
    return entries


def _value(raw: str, number: int) -> str:
    """Git's rules: unquoted whitespace at either end is dropped, quoted whitespace kept."""
    out: list[str] = []
    pending = ""  # unquoted whitespace, kept only if something follows it
    quoted = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch in " \t" and not quoted:
            pending += ch if out else ""
            i += 1
            continue
        if ch == '"':
            quoted = not quoted
            i += 1
            continue
        if ch in "#;" and not quoted:
            break
        if ch == "\\":
            i += 1
            if i >= len(raw):
                raise ConfigSyntaxError(f"line {number}: continuation lines are not supported")
            ch = {"n": "\n", "t": "\t", "b": "\b", "\\": "\\", '"': '"'}.get(raw[i], None) or _bad(number)
        out.append(pending + ch)
        pending = ""
        i += 1
    if quoted:
        raise ConfigSyntaxError(f"line {number}: unterminated quote")
    return "".join(out)


def _bad(number: int) -> str:
    raise ConfigSyntaxError(f"line {number}: bad escape sequence")


def quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_./:@?&=%+,~-]+", value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def render(sections: list[tuple[str, str | None, list[tuple[str, str]]]]) -> str:
    lines: list[str] = []
    for name, sub, items in sections:
        if sub is None:
            lines.append(f"[{name}]")
        else:
            lines.append(f'[{name} "{sub.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"]')
        lines += [f"\t{key} = {quote(value)}" for key, value in items]
    return "\n".join(lines) + "\n"
