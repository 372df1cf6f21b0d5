"""Step outputs and reports: `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, GitLab dotenv reports."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

from .. import log
from ..progress import human_bytes as human_bytes  # re-exported: one formatter for every byte count

# GitLab rejects dotenv reports over 5 KB; keep a margin for its own accounting.
DOTENV_LIMIT = 5000
DOTENV_PREFIX = "MIRRORCI_"


def github_output_text(outputs: Mapping[str, str]) -> str:
    """`name=value` lines; multiline values as `name<<DELIM` ... `DELIM`."""
    lines = []
    for name, value in outputs.items():
        if "\n" in value or "\r" in value:
            delim = f"ghadelimiter_{uuid.uuid4()}"
            while delim in value:
                delim = f"ghadelimiter_{uuid.uuid4()}"
            lines += [f"{name}<<{delim}", value, delim]
        else:
            lines.append(f"{name}={value}")
    return "".join(line + "\n" for line in lines)


def write_github_outputs(outputs: Mapping[str, str], env: Mapping[str, str] = os.environ) -> None:
    path = env.get("GITHUB_OUTPUT")
    if not path:
        log.warn("GITHUB_OUTPUT is not set: step outputs are not written")
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(github_output_text(outputs))


def save_state(name: str, value: str, env: Mapping[str, str] = os.environ) -> None:
    """Hand a value to the action's post step, which reads it as `STATE_<name>` (the runner's `$GITHUB_STATE`)."""
    path = env.get("GITHUB_STATE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(github_output_text({name: value}))


def append_summary(markdown: str, env: Mapping[str, str] = os.environ) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n")


def dotenv_name(name: str) -> str:
    return DOTENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


def dotenv_text(outputs: Mapping[str, str]) -> str:
    """`MIRRORCI_NAME=value` lines: one line per value, at most DOTENV_LIMIT bytes in all.

    Multiline values become space-separated; a value that would overflow the
    limit is left out with a warning rather than making GitLab reject the report.
    """
    text = ""
    for name, value in outputs.items():
        flat = " ".join(part for part in re.split(r"[\r\n]+", value) if part)
        line = f"{dotenv_name(name)}={flat}\n"
        if len((text + line).encode()) > DOTENV_LIMIT:
            log.warn(f"output {name} left out of the dotenv report: GitLab accepts at most {DOTENV_LIMIT} bytes")
            continue
        text += line
    return text


def write_dotenv(outputs: Mapping[str, str], path: Path) -> None:
    path.write_text(dotenv_text(outputs), encoding="utf-8")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[tuple[str, object]]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n"
