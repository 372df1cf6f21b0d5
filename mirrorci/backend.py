"""What a back-end declares: its options, its secrets, and the settings it builds from them.

A back-end is a mirror method (the checkout side, `sources.base.Source`) or a store
(the publish side, `store.base.StoreKind`), listed in registry.py. Back-ends that
talk to the same service share one declaration: the s3 method and the S3 store both
name `s3config.BACKEND`. From the declarations:

- the command line adds each option to the commands that take it, and the action's
  inputs follow from the command line (ci/inputs.py): an option is written down once;
- after parsing, each back-end builds its own settings object from the parsed
  arguments; the core carries these in one mapping keyed by back-end name
  (`Settings`) and never looks inside: only the back-end's own modules do, through
  `setting`;
- `secrets` are the environment variables the back-end reads credentials from (and
  the action inputs that set them): never options, because a command line is
  visible to every process. `Option.secret_parts` picks the secret out of an
  option's value (the password in a daemon URL) so that front ends can mask it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

COMMANDS = ("publish", "checkout")
Settings = Mapping[str, object]  # back-end name -> the settings object it built
T = TypeVar("T")


@dataclass(frozen=True)
class Option:
    """One command-line option of a back-end, on the commands that take it."""

    flag: str  # "--s3-region"
    commands: tuple[str, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # argparse's: help, type, choices, default, metavar...
    secret_parts: Callable[[str], list[str]] | None = None  # the parts of a value that must be masked

    @property
    def dest(self) -> str:
        """The attribute argparse stores the value under."""
        return str(self.kwargs.get("dest") or self.flag.lstrip("-").replace("-", "_"))


def option(flag: str, *commands: str, secret_parts: Callable[[str], list[str]] | None = None, **kwargs: Any) -> Option:
    """An option on `commands` (every command when none is named); `kwargs` go to argparse as they are."""
    return Option(flag, commands or COMMANDS, kwargs, secret_parts)


@dataclass(frozen=True)
class Secret:
    """A credential the back-end reads from the environment variable `env`; the action input `input` sets it."""

    input: str
    env: str
    masked: bool = True  # False: only sensitive together with another secret (a user name)
    commands: tuple[str, ...] = COMMANDS
    help: str = ""  # what it is, for the action input's description ("S3 secret access key")


def no_settings(command: str, args: argparse.Namespace) -> object | None:
    return None


@dataclass(frozen=True)
class Backend:
    """A back-end's declaration: what the front ends need to know about it, and nothing else."""

    name: str  # the key of its settings in `Settings`
    titles: Mapping[str, str] = field(default_factory=dict)  # command -> heading of its options in --help
    options: tuple[Option, ...] = ()
    # The settings for `command` from the parsed arguments, checked (UsageError says what to change);
    # None when the command takes none of its options.
    build: Callable[[str, argparse.Namespace], object | None] = no_settings
    secrets: tuple[Secret, ...] = ()

    def options_for(self, command: str) -> list[Option]:
        return [o for o in self.options if command in o.commands]

    def add_arguments(self, parser: argparse.ArgumentParser, command: str) -> None:
        """Its options for `command`, as one group in --help."""
        mine = self.options_for(command)
        if not mine:
            return
        group = parser.add_argument_group(self.titles.get(command, self.name))
        for opt in mine:
            group.add_argument(opt.flag, **opt.kwargs)


def setting(settings: Settings, name: str, kind: type[T]) -> T:
    """Back-end `name`'s settings, or its defaults when the caller gave none."""
    value = settings.get(name)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise TypeError(f"the {name} settings are a {type(value).__name__}, not a {kind.__name__}")
    return value
