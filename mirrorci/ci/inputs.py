"""Action inputs: read from the environment, turned into the CLI's own arguments.

GitHub passes `with:` inputs as `INPUT_<NAME>` upper-cased with hyphens kept
(`INPUT_PUBLIC-URL`); GitLab variables cannot hold hyphens, so the component
templates set `INPUT_PUBLIC_URL`. Both spellings are read.

Every option of `mirrorci publish` / `mirrorci checkout` is an input named like
the option (`--public-url` -> `public-url`, repeatable options in the plural:
`--git-mirror` -> `git-mirrors`, one value per line or comma-separated). The
inputs are parsed in-process by the CLI's own parser (nothing reaches a command
line), so both front ends build the same option objects and validate them alike.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import UsageError

TRUE = ("true", "True", "TRUE")
FALSE = ("false", "False", "FALSE")

# CLI options that have no input of their own name.
SKIPPED = {"help", "json"}
# Inputs named differently from their option, per command: option -> input.
RENAMED = {
    "publish": {"repo": "path"},
    "checkout": {"remote_url": "repository"},
}
# Boolean options whose input says the opposite: option -> input (default true).
INVERTED = {"publish": {"no-push": "push"}}


def env_name(name: str) -> str:
    return "INPUT_" + name.upper()


@dataclass
class Inputs:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def raw(self, name: str) -> str | None:
        for key in (env_name(name), env_name(name).replace("-", "_")):
            if key in self.env:
                return self.env[key]
        return None

    def get(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        value = value.strip() if value is not None else ""
        return value or default

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if not value:
            return default
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise UsageError(f"input {name}: {value!r} is not a boolean; use true or false")

    def list(self, name: str) -> list[str]:
        return [item.strip() for item in re.split(r"[\n,]", self.get(name)) if item.strip()]


@dataclass(frozen=True)
class InputSpec:
    """One input that maps to a CLI option."""

    name: str
    option: str | None  # "--public-url"; None for a positional
    kind: str  # "flag", "inverted", "list" or "value"
    help: str = ""


def command_parser(command: str) -> argparse.ArgumentParser:
    from ..cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # argparse keeps subparsers here and nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise LookupError(command)


def input_specs(command: str) -> list[InputSpec]:
    """The inputs that mirror `mirrorci <command>`'s options, derived from its parser."""
    specs = []
    for action in command_parser(command)._actions:
        long = next((o for o in action.option_strings if o.startswith("--")), None)
        key = long[2:] if long else action.dest
        if key in SKIPPED:
            continue
        inverted = INVERTED.get(command, {}).get(key)
        name = inverted or RENAMED.get(command, {}).get(key, key)
        if inverted:
            kind = "inverted"
        elif isinstance(action, argparse._StoreTrueAction):
            kind = "flag"
        elif isinstance(action, argparse._AppendAction):
            kind, name = "list", name + "s"
        else:
            kind = "value"
        specs.append(InputSpec(name.replace("_", "-"), long, kind, action.help or ""))
    return specs


def to_argv(command: str, inputs: Inputs, overrides: Mapping[str, str | bool | list[str] | None] = {}) -> list[str]:
    """`mirrorci <command>` arguments from the inputs; `overrides` replace inputs by name."""
    positional: list[str] = []
    argv: list[str] = []
    for spec in input_specs(command):
        if spec.name in overrides:
            value = overrides[spec.name]
        elif spec.kind in ("flag", "inverted"):
            value = inputs.bool(spec.name, default=spec.kind == "inverted")
        elif spec.kind == "list":
            value = inputs.list(spec.name)
        else:
            value = inputs.get(spec.name)
        if spec.option is None:
            if value:
                positional.append(str(value))
        elif spec.kind == "flag":
            if value:
                argv.append(spec.option)
        elif spec.kind == "inverted":
            if not value:
                argv.append(spec.option)
        elif spec.kind == "list":
            for item in value or []:  # type: ignore[union-attr]
                argv += [spec.option, item]
        elif value not in (None, ""):
            argv += [spec.option, str(value)]
    return [command, *argv, *positional]


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse with the CLI's parser; its complaints become a UsageError (exit code 2)."""
    from ..cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit:
        message = err.getvalue().strip().splitlines()
        detail = message[-1] if message else "invalid inputs"
        detail = re.sub(r"^mirrorci \w+: error: ", "", detail)
        # Speak of inputs, not options: "--verify" -> "input verify".
        raise UsageError(_as_inputs(argv[0], detail)) from None


def _as_inputs(command: str, text: str) -> str:
    names = {spec.option: spec.name for spec in input_specs(command) if spec.option}
    return re.sub(r"(?:argument )?(--[a-z0-9-]+)(?:/--[a-z0-9-]+)?(?: [A-Z_]+)?",
                  lambda m: f"input {names.get(m.group(1), m.group(1)[2:])}", text)
