"""Command line: `mirrorci publish | checkout | inspect | demo`.

Origin's token, if any, is read from MIRRORCI_TOKEN (user name MIRRORCI_TOKEN_USER,
default x-access-token) and only ever sent to origin's host.

Exit codes: 0 success (a checkout that fell back to origin included),
2 bad usage or configuration, 1 failure. `--json` prints one object on stdout;
progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from . import __version__, environment, log, registry
from .auth import DEFAULT_TOKEN_USER
from .chain import DEFAULT_COLLAPSE_FRACTION, DEFAULT_MAX_CHAIN
from .deadline import DEFAULT_STALL, DEFAULT_TIMEOUT
from .errors import MirrorciError
from .retention import DEFAULT_GRACE
from .ssh import SshOptions

DEFAULT_MAX_BUNDLE_SIZE = 64 << 30  # the same as CheckoutOptions' default
TOKEN_ENV = "MIRRORCI_TOKEN"
TOKEN_USER_ENV = "MIRRORCI_TOKEN_USER"
SSH_KEY_ENV = "MIRRORCI_SSH_KEY"
T = TypeVar("T")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse reports the error as a usage error, exit code 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _non_negative(kind: type) -> Callable[[str], Any]:
    """An int or float that is 0 or more and finite (argparse reports the error as a usage error)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more")
        return value

    return parse


def _size(text: str) -> int:
    from .apply import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _token() -> dict[str, str]:
    """Origin's token comes from the environment only: a command line is visible to every process."""
    token = environment.get(TOKEN_ENV).strip()
    if not token:
        return {}
    log.mask(token)
    return {"token": token, "token_user": environment.get(TOKEN_USER_ENV).strip() or DEFAULT_TOKEN_USER}


def _ssh(args: argparse.Namespace) -> SshOptions:
    """The private key comes from the environment only, like the token."""
    # Out of the environment too, so no child process (git, ssh, git-lfs, a mirror's client) inherits it.
    key = (os.environ.pop(SSH_KEY_ENV, "") or environment.get(SSH_KEY_ENV)).strip()
    if key:
        for line in key.splitlines():
            log.mask(line.strip())
    return SshOptions(key=key or None, known_hosts=args.ssh_known_hosts or "", strict=not args.no_ssh_strict,
                      user=args.ssh_user)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line that says what to change, not a wall of usage text."""

    def error(self, message: str) -> NoReturn:
        log.error(f"{self.prog}: {message} (see '{self.prog} --help')")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mirrorci", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mirrorci {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_publish(sub.add_parser("publish",
                                help="bundle the repository, upload it, and advertise it under refs/mirrors/*"))
    checkout = sub.add_parser("checkout", help="clone REMOTE_URL, taking the bulk of the objects from its mirrors")
    _add_checkout(checkout)
    _add_checkout_like_actions_checkout(checkout)
    registry.add_arguments(checkout, "checkout")  # each mirror method's own options
    _add_inspect_and_demo(sub)
    return parser


def command_actions(command: str) -> list[argparse.Action]:
    """The arguments of `mirrorci <command>` in declaration order (help included): what action inputs derive from."""
    parser = _Parser(prog=f"mirrorci {command}")
    if command == "publish":
        _add_publish(parser)
    elif command == "checkout":
        _add_checkout(parser)
        _add_checkout_like_actions_checkout(parser)
        registry.add_arguments(parser, "checkout")
    else:
        raise LookupError(command)
    return list(parser._actions)  # argparse's documented-by-use list of a parser's arguments


def _add_publish(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."), help="repository to publish (default: .)")
    p.add_argument("--remote", default="origin",
                   help="remote name or URL that receives refs/mirrors/* (default: origin)")
    p.add_argument("--store", required=True, help=registry.store_forms())
    p.add_argument("--public-url", help="base URL clients download the store's files from")
    p.add_argument("--git-mirror", action="append", default=[], metavar="URL",
                   help="advertise a git mirror (repeatable)")
    p.add_argument("--http-mirror", action="append", default=[], metavar="URL",
                   help="advertise a smart-HTTP git mirror (repeatable)")
    p.add_argument("--name", help="name of the mirror in the store (default: from the remote URL)")
    p.add_argument("--no-push", action="store_true", help="write refs/mirrors/* into --repo instead of pushing them")
    p.add_argument("--source", choices=("auto", "local", "remote"), default="auto",
                   help="what to bundle: the remote's branches and tags (remote; the default when pushing, "
                        "right for shallow CI checkouts) or --repo's own (local; the default with --no-push)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    g = p.add_argument_group("chain and retention (a base bundle, then one small increment per publish)")
    g.add_argument("--max-chain", type=_non_negative(int), default=DEFAULT_MAX_CHAIN, metavar="N",
                   help="increments on one base before a publish makes a new base instead; a cold clone "
                        f"downloads the base and every increment (default {DEFAULT_MAX_CHAIN}; 0: always a new base)")
    g.add_argument("--collapse-fraction", type=_non_negative(float), default=DEFAULT_COLLAPSE_FRACTION, metavar="F",
                   help="make a new base once the increments together would exceed this fraction of the base's "
                        f"size (default {DEFAULT_COLLAPSE_FRACTION:g})")
    g.add_argument("--grace", type=_non_negative(float), default=DEFAULT_GRACE, metavar="SECONDS",
                   help="files neither the new nor the previous bundle list names are deleted from the store only "
                        "once older than this: a runner that read an older list (or a cached copy of it) may still "
                        f"be downloading them (default {DEFAULT_GRACE:g}, one day)")
    p.add_argument("--lfs", choices=("auto", "true", "false"), default="auto",
                   help="upload the LFS objects the published tips point to, with a manifest under "
                        "refs/mirrors/lfs/http (auto: when the tips use LFS; the default)")
    registry.add_arguments(p, "publish")  # each store's and mirror method's own options



def _add_checkout(c: argparse.ArgumentParser) -> None:
    c.add_argument("remote_url", metavar="REMOTE_URL")
    c.add_argument("--path", type=Path, help="directory to clone into (default: like git clone)")
    c.add_argument("--ref", help="branch, tag or commit to check out (default: origin's HEAD)")
    c.add_argument("--prefer", help=registry.prefer_help())
    c.add_argument("--cache-dir", type=Path, help="directory kept between runs (mirror list cache)")
    c.add_argument("--no-mirrors", action="store_true", help="ignore mirrors: a plain clone from origin")
    c.add_argument("--allow-file-urls", action="store_true", help="accept file:// bundle URLs (local stores)")
    c.add_argument("--verify", choices=("auto", "full"), default="auto",
                   help="full: always index the pack with git index-pack instead of using the published index")
    c.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="bounds each mirror method's whole attempt: connect, download, indexing, a git mirror's "
                        f"fetch, a torrent's wait (default {DEFAULT_TIMEOUT:g})")
    c.add_argument("--stall-timeout", type=_seconds, default=DEFAULT_STALL, metavar="SECONDS",
                   help=f"abandon a mirror transfer that made no progress for this long (default {DEFAULT_STALL:g})")
    c.add_argument("--max-bundle-size", type=_size, default=DEFAULT_MAX_BUNDLE_SIZE, metavar="SIZE",
                   help="refuse a bundle the mirror list says is larger: bytes, or with a suffix like 500M or 20G "
                        "(default 64G)")
    c.add_argument("--clean", action="store_true",
                   help="a non-empty --path: update a clone of the same origin in place (fetch, reset --hard, "
                        "clean -ffdx), or replace whatever else it holds (as actions/checkout does)")
    c.add_argument("--persist-credentials", action="store_true",
                   help="keep the origin token (MIRRORCI_TOKEN) in the clone's config for later git commands")
    c.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _add_checkout_like_actions_checkout(c: argparse.ArgumentParser) -> None:
    """actions/checkout's inputs that are options of the checkout itself."""
    c.add_argument("--commit", metavar="OID",
                   help="leave this commit checked out (the CI event's), with --ref naming its branch or ref")
    c.add_argument("--fetch-depth", type=_non_negative(int), default=0, metavar="N",
                   help="commits of history to fetch when the checkout falls back to origin (0: all). A mirror "
                        "always gives the full history: it costs origin nothing")
    c.add_argument("--no-tags", action="store_true", help="leave no tags in the clone (as git clone --no-tags)")
    c.add_argument("--filter", metavar="SPEC",
                   help="partial-clone filter (e.g. blob:none) for what comes from origin; a mirror's history is whole")
    c.add_argument("--sparse-checkout", action="append", default=[], metavar="PATTERN",
                   help="check out only these paths (repeatable; directories in cone mode)")
    c.add_argument("--no-sparse-checkout-cone", action="store_true",
                   help="--sparse-checkout patterns are gitignore-style patterns, not directories")
    c.add_argument("--submodules", choices=("false", "true", "recursive"), default="false",
                   help="check out submodules (true: one level; recursive: all), each through its own origin's mirrors")
    c.add_argument("--lfs", action="store_true",
                   help="download Git LFS files: from the mirror's LFS objects, the rest from origin's LFS server")
    c.add_argument("--ssh-known-hosts", metavar="LINES",
                   help="known_hosts lines for an ssh origin (the key itself is read from MIRRORCI_SSH_KEY)")
    c.add_argument("--no-ssh-strict", action="store_true",
                   help="do not check the ssh origin's host key (StrictHostKeyChecking=no)")
    c.add_argument("--ssh-user", default="git", help="user for an owner/name repository reached over ssh (default git)")
    c.add_argument("--no-progress", action="store_true", help="no progress output (a terminal shows it by default)")
    c.add_argument("--set-safe-directory", action="store_true",
                   help="add the clone to safe.directory in the global git config (for later steps as another user)")
    c.add_argument("--same-owner-as", type=Path, metavar="DIR",
                   help="when run as root, give the clone's files to DIR's owner "
                        "(a container writing a runner's workspace)")


def _add_inspect_and_demo(sub: Any) -> None:
    i = sub.add_parser("inspect", help="show what REMOTE_URL advertises under refs/mirrors/*")
    i.add_argument("remote_url", metavar="REMOTE_URL")
    i.add_argument("--json", action="store_true")

    d = sub.add_parser("demo", help="publish a sample repository to a local store and check it out (no account needed)")
    d.add_argument("--workdir", type=Path, help="where to put the demo's files (default: a temporary directory)")
    d.add_argument("--source", type=Path,
                   help="repository to use (default: the one around the current directory, else a generated sample)")
    d.add_argument("--json", action="store_true")


def guarded(work: Callable[[], T]) -> tuple[int, T | None]:
    """Run work; turn every failure into one error line and the exit code it deserves."""
    try:
        return 0, work()
    except MirrorciError as exc:
        log.error(str(exc))
        return exc.exit_code, None
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)
        log.error("terminated" if signum == 15 else "interrupted")
        return 128 + signum, None
    except Exception as exc:
        if os.environ.get("MIRRORCI_DEBUG"):
            raise
        from . import crashlog  # only on a bug: the traceback goes to a file the error line names

        log.error(crashlog.report(exc))
        return 1, None


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code, summary = guarded(lambda: dispatch(args))
    if code:
        return code
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def dispatch(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run a parsed command. `env`: the environment to read secrets from and start git with,
    instead of the process's (the CI entry point hands a job's inputs in this way)."""
    with environment.using(env):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "publish":
        from .publish import PublishOptions, publish

        result = publish(PublishOptions(
            store=args.store, repo=args.repo, remote=args.remote, public_url=args.public_url,
            git_mirrors=args.git_mirror, http_mirrors=args.http_mirror, name=args.name,
            push=not args.no_push, source=args.source, **_token(),
            settings=registry.settings_from_args(args, "publish"), max_chain=args.max_chain,
            collapse_fraction=args.collapse_fraction, grace=args.grace, lfs=args.lfs,
        ))
        if result["published"] == "nothing":
            log.info(f"published nothing new ({result['reason']}); the list still ends at {result['bundle']['url']}")
        else:
            log.info(f"published {'a new base' if result['published'] == 'base' else 'an increment'} "
                     f"{result['bundle']['url']} ({result['bundle']['size']} bytes; {result['reason']})")
        return result
    if args.command == "checkout":
        from .checkout import CheckoutOptions, checkout

        outcome = checkout(CheckoutOptions(
            remote_url=args.remote_url, path=args.path, ref=args.ref, prefer=args.prefer,
            cache_dir=args.cache_dir, no_mirrors=args.no_mirrors, allow_file_urls=args.allow_file_urls,
            verify=args.verify, timeout=args.timeout, stall_timeout=args.stall_timeout,
            max_bundle_size=args.max_bundle_size, clean=args.clean,
            persist_credentials=args.persist_credentials, **_token(),
            settings=registry.settings_from_args(args, "checkout"),
            commit=args.commit, fetch_depth=args.fetch_depth, fetch_tags=not args.no_tags, filter=args.filter,
            sparse_checkout=args.sparse_checkout, sparse_cone=not args.no_sparse_checkout_cone,
            submodules=args.submodules, lfs=args.lfs, ssh=_ssh(args), show_progress=not args.no_progress,
            set_safe_directory=args.set_safe_directory, same_owner_as=args.same_owner_as,
        ))
        log.info(f"checked out {outcome.head} in {outcome.path} via {outcome.method}"
                 f"{'' if outcome.final_fetch else ' (no fetch from origin needed)'}")
        return outcome.to_json()
    if args.command == "inspect":
        from .advertised import describe, inspect_json, inspect_remote

        mirrors = inspect_remote(args.remote_url)
        if not args.json:
            print(describe(mirrors))
        return inspect_json(mirrors)
    from .demo import run_demo

    return run_demo(args.workdir, args.source)


def main() -> None:
    sys.exit(run())
