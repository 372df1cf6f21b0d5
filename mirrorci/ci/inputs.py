"""Action inputs: read from the environment, turned into the CLI's own arguments.

GitHub passes `with:` inputs as `INPUT_<NAME>` upper-cased with hyphens kept
(`INPUT_PUBLIC-URL`); GitLab variables cannot hold hyphens, so the component
templates set `INPUT_PUBLIC_URL`. Both spellings are read.

Every option of `mirrorci publish` / `mirrorci checkout` is an input, derived from
the CLI's own parser so the two cannot drift apart:

- named like the option (`--public-url` -> `public-url`); repeatable options in the
  plural (`--git-mirror` -> `git-mirrors`, one value per line or comma-separated),
  unless NAMES says otherwise (`--sparse-checkout` -> `sparse-checkout`, one
  pattern per line, as actions/checkout reads it);
- a `--no-X` flag whose input NAMES gives another name says the opposite
  (`--no-tags` -> `fetch-tags`, true unless set to false);
- options the CI layer sets itself from the job (CI_SET) have no input.

Values are checked one input at a time with the option's own type and choices, so
a complaint names the input (`input verify: ...`), and only then handed to the
CLI's parser, so both front ends build the same option objects.

Secrets are not options: the CLI reads them from its environment (MIRRORCI_TOKEN,
MIRRORCI_SSH_KEY; each back-end declares its own, AWS_* for S3), never from a
command line; `env_inputs` lists the inputs that set them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .. import cli, registry
from ..backend import COMMANDS, Secret
from ..errors import UsageError

TRUE = ("true", "True", "TRUE")
FALSE = ("false", "False", "FALSE")

# Options that are no input: the CLI's own output switches, and what the CI layer derives from the job
# (the event's commit, the workspace owner).
CI_SET = {"help", "json", "commit", "same-owner-as"}
# Inputs named otherwise than the option (or its plural), per command: option -> input.
NAMES: dict[str, dict[str, str]] = {
    "publish": {"repo": "path", "no-push": "push"},
    "checkout": {
        "remote-url": "repository",
        "sparse-checkout": "sparse-checkout",
        "no-tags": "fetch-tags",
        "no-sparse-checkout-cone": "sparse-checkout-cone-mode",
        "no-ssh-strict": "ssh-strict",
        "no-progress": "show-progress",
    },
}
# List inputs read one item per line only (a sparse-checkout pattern may hold a comma).
LINES = {"sparse-checkout"}
# Input defaults that differ from the CLI's: actions/checkout's, so that switching to this step changes nothing.
DEFAULTS: dict[str, dict[str, str]] = {
    "publish": {},
    "checkout": {"clean": "true", "persist-credentials": "true", "set-safe-directory": "true", "fetch-depth": "1",
                 "fetch-tags": "false"},
}


# Origin's credentials, which the CLI reads from its environment; the back-ends declare their own (registry.py).
CORE_SECRETS = (
    Secret("token", cli.TOKEN_ENV),
    Secret("token-user", cli.TOKEN_USER_ENV, masked=False),
    Secret("ssh-key", cli.SSH_KEY_ENV, commands=("checkout",)),
)


def env_inputs(command: str) -> list[Secret]:
    """The inputs the CLI reads from its environment for `command`: origin's credentials, then the back-ends'."""
    return [s for s in CORE_SECRETS if command in s.commands] + registry.secrets(command)


# Inputs the CI layer reads itself, beyond the CLI's options.
OWN_INPUTS: dict[str, set[str]] = {"publish": set(), "checkout": {"github-server-url", "allow-unsafe-pr-checkout"}}
EXTRA_INPUTS = {command: {s.input for s in env_inputs(command)} | OWN_INPUTS[command] for command in COMMANDS}

Value = str | bool | Sequence[str] | None


def env_name(name: str) -> str:
    return "INPUT_" + name.upper()


@dataclass
class Inputs:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def raw(self, name: str) -> str | None:
        """The value as given, None when the variable is absent (both spellings)."""
        for key in (env_name(name), env_name(name).replace("-", "_")):
            if key in self.env:
                return self.env[key]
        return None

    def get(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        value = value.strip() if value is not None else ""
        return value or default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if not value:
            return default
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise UsageError(f"input {name}: {value!r} is not a boolean; use true or false")

    def items(self, name: str) -> list[str]:
        """One item per line or comma-separated."""
        return [item.strip() for item in re.split(r"[\n,]", self.get(name)) if item.strip()]

    def lines(self, name: str) -> list[str]:
        """One item per line (actions/checkout's multi-line inputs)."""
        return [item.strip() for item in self.get(name).splitlines() if item.strip()]


@dataclass(frozen=True)
class InputSpec:
    """One input that maps to a CLI option."""

    name: str
    option: str | None  # "--public-url"; None for a positional
    kind: str  # "flag", "inverted", "list" or "value"
    help: str = ""
    action: argparse.Action | None = field(default=None, compare=False, repr=False)


def command_actions(command: str) -> list[argparse.Action]:
    """The arguments of `mirrorci <command>` as its parser declares them (help included)."""
    return cli.command_actions(command)


def _kind(action: argparse.Action, key: str, name: str) -> str:
    if action.nargs == 0:  # store_true: the CLI's only argument-less kind besides --help
        return "inverted" if key.startswith("no-") and not name.startswith("no-") else "flag"
    if isinstance(action.default, list):  # append
        return "list"
    return "value"


def input_specs(command: str) -> list[InputSpec]:
    """The inputs that mirror `mirrorci <command>`'s options, derived from its parser."""
    specs = []
    for action in command_actions(command):
        long = next((o for o in action.option_strings if o.startswith("--")), None)
        key = long[2:] if long else action.dest.replace("_", "-")
        if key in CI_SET:
            continue
        name = NAMES.get(command, {}).get(key)
        plural = name is None and isinstance(action.default, list) and action.nargs != 0
        name = name or (key + "s" if plural else key)
        specs.append(InputSpec(name, long, _kind(action, key, name), action.help or "", action))
    return specs


def default(command: str, spec: InputSpec) -> str:
    """The input's default as action.yml declares it ('' for the CLI's own)."""
    if spec.name in DEFAULTS.get(command, {}):
        return DEFAULTS[command][spec.name]
    return "true" if spec.kind == "inverted" else "false" if spec.kind == "flag" else ""


def _read(command: str, spec: InputSpec, inputs: Inputs) -> Value:
    fallback = default(command, spec)
    if spec.kind in ("flag", "inverted"):
        return inputs.flag(spec.name, default=fallback == "true")
    if spec.kind == "list":
        return inputs.lines(spec.name) if spec.name in LINES else inputs.items(spec.name)
    return inputs.get(spec.name, fallback)


def _checked(spec: InputSpec, value: str) -> str:
    """The value as the option's type and choices accept it; a complaint names the input."""
    action = spec.action
    if action is None:
        return value
    if action.choices is not None:
        match = next((c for c in action.choices if str(c).lower() == value.lower()), None)
        if match is None:
            raise UsageError(f"input {spec.name}: {value!r} is not one of {', '.join(map(str, action.choices))}")
        value = str(match)
    if callable(action.type):
        try:
            action.type(value)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"input {spec.name}: {exc}") from None
        except (TypeError, ValueError):
            kind = getattr(action.type, "__name__", "value")
            raise UsageError(f"input {spec.name}: {value!r} is not a valid {kind}") from None
    return value


def to_argv(command: str, inputs: Inputs, overrides: Mapping[str, Value] = {}, extra: Sequence[str] = ()) -> list[str]:
    """`mirrorci <command>` arguments from the inputs; `overrides` replace inputs by name, `extra` are
    options the CI layer sets itself (CI_SET)."""
    positional: list[str] = []
    argv: list[str] = []
    for spec in input_specs(command):
        value = overrides[spec.name] if spec.name in overrides else _read(command, spec, inputs)
        if spec.kind == "flag":
            argv += [spec.option] if value and spec.option else []
        elif spec.kind == "inverted":
            argv += [spec.option] if not value and spec.option else []
        elif spec.kind == "list":
            for item in value or []:  # type: ignore[union-attr]
                argv += [str(spec.option), _checked(spec, item)]
        elif value not in (None, ""):
            text = _checked(spec, str(value))
            if spec.option is None:
                positional.append(text)
            else:
                argv += [spec.option, text]
        elif spec.action is not None and spec.action.required:
            raise UsageError(f"input {spec.name} is required")
    return [command, *argv, *extra, *positional]


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse with the CLI's parser (every value was checked by to_argv, so it is not expected to refuse)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return cli.build_parser().parse_args(argv)
    except SystemExit:
        detail = (err.getvalue().strip().splitlines() or ["invalid inputs"])[-1]
        raise UsageError(f"the inputs make no valid `mirrorci {argv[0]}` call: {detail}") from None


def environment(command: str, inputs: Inputs, defaults: Mapping[str, str] = {}) -> dict[str, str]:
    """The CLI's environment inputs (variable -> value) the step's inputs give; `defaults` by input name."""
    env = {}
    for item in env_inputs(command):
        value = inputs.get(item.input, defaults.get(item.input, ""))
        if value:
            env[item.env] = value
    return env


def secrets(command: str, inputs: Inputs, env: Mapping[str, str]) -> list[str]:
    """Every secret the step was given, line by line (a private key has many): the inputs, the variables
    the CLI reads secrets from, the secret parts of option values (a password in a daemon URL). One line
    each, because a mask request is one line: the rest of a multi-line value would be printed."""
    masked = [item for item in env_inputs(command) if item.masked]
    values = [inputs.get(item.input) for item in masked] + [env.get(item.env, "") for item in masked]
    parts = registry.secret_options(command)
    for spec in input_specs(command):
        value = inputs.get(spec.name)
        if value and spec.option in parts:
            values += parts[spec.option](value)
    return [line.strip() for value in values for line in value.splitlines() if line.strip()]


def secret_input_variables(command: str) -> list[str]:
    """The INPUT_* names secret inputs arrive in (both spellings): no child process needs to inherit them."""
    names = [item.input for item in env_inputs(command) if item.masked]
    return [key for name in names for key in (env_name(name), env_name(name).replace("-", "_"))]
