"""Git mirrors (refs/mirrors/fetch/git and fetch/http): a plain fetch from a full copy.

Nothing meant for origin may reach a mirror host, whatever the clone's config or
the environment holds. `-c http.extraHeader=` is not enough: git prefers a
URL-scoped `http.<origin>.extraHeader` (what --persist-credentials writes, and
what actions/checkout writes) over an unscoped one, credential helpers can be
URL-scoped too, and cookie files, client certificates or includes can hide
anywhere. So the fetch never reads the clone's config at all: it runs in a
scratch repository (GIT_DIR) that writes its objects straight into the clone's
object directory (GIT_OBJECT_DIRECTORY), with no global or system config, no
GIT_CONFIG_* entries from the environment, credential helpers and askpass off,
and, for http(s), a HOME without a .netrc. Only the transports a mirror list may
name are allowed. The tips it fetched are read back from the scratch repository.

The fetch, with every helper process it starts, is killed when the attempt's
--timeout runs out; whatever it left in objects/pack is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from .. import log, ssh
from ..errors import GitError, SourceFailed
from ..gitcmd import Git, GitTimeout
from .base import FetchContext, Fetched, Source

# In the scratch repository (never in the clone): where the fetch puts the mirror's branches
# and tags, read back as the tips it brought.
SCRATCH_TIPS = "refs/mirrorci/mirror/"
NO_CREDENTIALS = ("credential.helper=", "http.extraHeader=", "core.askPass=")
# The fetch must not start housekeeping in the clone's object directory, nor in submodules.
QUIET_FETCH = ("fetch.unpackLimit=1", "gc.auto=0", "maintenance.auto=false", "fetch.recurseSubmodules=false")
SCHEMES = ("git", "http", "https", "ssh")
# Environment a mirror fetch must not inherit: config entries and files, client certificates,
# and anything that points git at another repository or object store.
_DROPPED_PREFIXES = ("GIT_CONFIG",)
_DROPPED = frozenset({
    "GIT_SSL_CERT", "GIT_SSL_KEY", "GIT_SSL_CERT_PASSWORD_PROTECTED", "GIT_COMMON_DIR", "GIT_INDEX_FILE",
    "GIT_NAMESPACE", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES",
})


class _IsolatedGit(Git):
    """Git with only the environment set here: nothing of the user's git configuration survives."""

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = super()._env(None)
        for key in list(env):
            if key.startswith(_DROPPED_PREFIXES) or key in _DROPPED:
                del env[key]
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
        env.update(self.env)
        env.update(extra or {})
        return env


def shown(url: str) -> str:
    """The URL for messages, without user info; never raises, even on a malformed URL."""
    try:
        return log.redact_url(url)
    except ValueError:
        return repr(url[:200])


def check_url(url: str, allow_file_urls: bool) -> str:
    """The URL's scheme, or SourceFailed with the reason it cannot be fetched from."""
    if not url or url != url.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise SourceFailed("mirror URL is empty or holds whitespace or control characters")
    if url.startswith("-"):
        raise SourceFailed("mirror URL starts with '-'")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a non-numeric or out-of-range port)
    except ValueError as exc:
        raise SourceFailed(f"malformed mirror URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_file_urls:
            raise SourceFailed("file:// URLs need --allow-file-urls")
    elif scheme not in SCHEMES:
        raise SourceFailed(f"unsupported scheme {scheme or '(none)'}: for a git mirror")
    elif not parts.hostname:
        raise SourceFailed("mirror URL has no host")
    return scheme


class GitMirrorSource(Source):
    name = "git"

    def fetch(self, ctx: FetchContext) -> Fetched:
        urls = ctx.mirrors.git_mirrors + ctx.mirrors.http_mirrors
        if not urls:
            raise SourceFailed("origin advertises no git mirror")
        try:
            object_format = ctx.git.out("rev-parse", "--show-object-format")
            objects = ctx.git.git_path("objects")
        except GitError as exc:
            raise SourceFailed(f"cannot read the repository being filled: {exc}") from None
        reasons = []
        for url in urls:
            if ctx.deadline.expired():
                reasons.append(f"{shown(url)}: not tried, --timeout {ctx.deadline.seconds:g} s already spent")
                break
            try:
                scheme = check_url(url, ctx.allow_file_urls)
                tips, fetched = _fetch_isolated(ctx, url, scheme, object_format, objects)
                return Fetched(self.name, shown(url), tips, fetched)
            except GitTimeout:
                reasons.append(f"{shown(url)}: the fetch did not finish within --timeout {ctx.deadline.seconds:g} s")
            except (SourceFailed, GitError) as exc:
                reasons.append(f"{shown(url)}: {exc}")
            except Exception as exc:  # OSError and anything else: a fallback with its reason, never a crash
                first = str(exc).splitlines()[0][:200] if str(exc) else ""
                reasons.append(f"{shown(url)}: {type(exc).__name__}: {first}")
            log.warn(f"git mirror not used: {reasons[-1]}")
        raise SourceFailed("; ".join(reasons))


def _fetch_isolated(
    ctx: FetchContext, url: str, scheme: str, object_format: str, objects: Path
) -> tuple[dict[str, str], int]:
    """Fetch every branch and tag of `url` into the clone's object store, reading none of its config."""
    pack_dir = objects / "pack"
    before = {p.name for p in pack_dir.iterdir()}
    sizes = sum(p.stat().st_size for p in pack_dir.glob("pack-*.pack"))
    ok = False
    with tempfile.TemporaryDirectory(prefix="mirrorci-mirror-") as scratch:
        repo = Path(scratch) / "repo.git"
        # ssh needs the user's keys and known_hosts; every other transport gets an empty HOME (no .netrc).
        env = {"HOME": scratch} if scheme != "ssh" else {}
        env.update(ssh.mirror_env())  # never origin's ssh key or ssh command (see mirrorci/ssh.py)
        env["GIT_ALLOW_PROTOCOL"] = ":".join(SCHEMES + (("file",) if ctx.allow_file_urls else ()))
        _IsolatedGit(None, env=env).run("init", "--quiet", "--bare", f"--object-format={object_format}", str(repo))
        stall = max(1, int(ctx.deadline.stall))
        git = _IsolatedGit(
            None,
            config=NO_CREDENTIALS + QUIET_FETCH + ("http.lowSpeedLimit=1", f"http.lowSpeedTime={stall}"),
            env={**env, "GIT_DIR": str(repo), "GIT_OBJECT_DIRECTORY": str(objects)},
        )
        try:
            git.run(
                "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--", url,
                f"+refs/heads/*:{SCRATCH_TIPS}heads/*", f"+refs/tags/*:{SCRATCH_TIPS}tags/*",
                timeout=ctx.deadline.remaining(),
            )
            tips = {}
            listing = git.out("for-each-ref", "--format=%(objectname) %(refname)", SCRATCH_TIPS,
                              timeout=max(1.0, ctx.deadline.remaining()))
            for line in listing.splitlines():
                oid, ref = line.split(" ", 1)
                tips["refs/" + ref[len(SCRATCH_TIPS):]] = oid
            if not tips:
                raise SourceFailed("the mirror has no branches or tags")
            ok = True
        finally:
            if not ok:
                # A killed or failed fetch leaves temporary packs, or a whole pack no ref
                # vouches for: neither may stay in the clone.
                for path in pack_dir.iterdir():
                    if path.name not in before:
                        path.unlink(missing_ok=True)
    return tips, sum(p.stat().st_size for p in pack_dir.glob("pack-*.pack")) - sizes
