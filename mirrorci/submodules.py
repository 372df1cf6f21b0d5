"""Submodules, each through its own origin's mirrors.

After the superproject is checked out, every submodule its index records (a gitlink
with an entry in .gitmodules) is checked out with the same mirror-first checkout as
the superproject, so that each submodule's origin is asked for its own refs/mirrors/*:
one that publishes a mirror is filled from it (verified like any checkout), the others
by a normal fetch from their origin. The gitlink's commit is what ends up checked out,
whatever a mirror holds. Then the submodule is left as `git submodule update --init`
leaves it: its git directory under the superproject's .git/modules/<name> (as
`git submodule absorbgitdirs` puts it), `submodule.<name>.url` and `.active` in the
superproject's config, the work tree detached at the gitlink commit, and a local
branch for origin's default branch, as the clone `git submodule update` makes has.

The rules are git's and actions/checkout's:
- URLs: `./` and `../` URLs are relative to the superproject's origin URL
  (`resolve_url`); the protocols git allows for submodules by default are http(s),
  git and ssh; a local path or file:// only with protocol.file.allow=always, as git.
- Sparse checkout: its patterns do not apply to submodules. `git submodule update`
  populates a submodule outside the sparse set too (git-sparse-checkout(1),
  SUBMODULES), and so does this.
- `update = none` in .gitmodules: registered, not checked out.
- Credentials: the token's scope is the superproject's server (scheme://host[:port]/).
  A submodule on that server gets the token (and, with --persist-credentials, keeps it
  as the superproject does); a submodule anywhere else gets none. Without an ssh key,
  `git@<that host>:` URLs are fetched over the server's https URL instead, as
  actions/checkout's `url.<server>.insteadOf` makes git do. ssh options pass through.
- A submodule already in the work tree from an earlier run (its git directory in
  .git/modules/<name>, same origin) is updated in place, like the superproject.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import auth, log
from .errors import GitError, MirrorciError, UsageError
from .gitcmd import Git
from .target import same_url

if TYPE_CHECKING:
    from .checkout import CheckoutOptions, CheckoutResult

GITLINK_MODE = "160000"
# What git lets a submodule be cloned over without protocol.<name>.allow=always (GIT_PROTOCOL_FROM_USER=0).
SAFE_PROTOCOLS = ("http", "https", "git", "ssh", "git+ssh", "ssh+git")
CACHE_SUBDIR = "submodules"  # under --cache-dir: one runner cache per submodule origin


@dataclass(frozen=True)
class Submodule:
    name: str
    path: str  # relative to its superproject's top
    url: str  # as .gitmodules gives it (possibly relative)
    commit: str  # the gitlink: what must end up checked out
    update: str = ""  # .gitmodules' update mode ("none": not checked out)


def resolve_url(url: str, remote_url: str) -> str:
    """A .gitmodules URL as git resolves it: `./x` and `../x` relative to the superproject's
    origin URL (`remote_url`), any other URL as it is. Mirrors git's relative_url()."""
    if not url.startswith(("./", "../")):
        return url
    base = remote_url[:-1] if remote_url.endswith("/") else remote_url
    is_relative = _local_not_ssh(base) and not os.path.isabs(base)
    if is_relative and not base.startswith(("./", "../")):
        base = "./" + base
    colon = False
    while True:
        if url.startswith("../"):
            url = url[3:]
            base, chopped_at_colon = _chop_last_dir(base, is_relative, remote_url)
            colon = colon or chopped_at_colon
        elif url.startswith("./"):
            url = url[2:]
        else:
            break
    out = f"{base}{':' if colon else '/'}{url}"
    if url.endswith("/"):
        out = out[:-1]
    return out[2:] if out.startswith("./") else out


def _local_not_ssh(url: str) -> bool:
    """git's url_is_local_not_ssh: no colon, or a slash before the first one."""
    colon, slash = url.find(":"), url.find("/")
    return colon < 0 or 0 <= slash < colon


def _chop_last_dir(base: str, is_relative: bool, remote_url: str) -> tuple[str, bool]:
    """One `../`: drop base's last path component; True when it ended at an scp-like colon."""
    if "/" in base:
        return base[:base.rindex("/")], False
    if ":" in base:
        return base[:base.rindex(":")], True
    if is_relative or base == ".":
        raise MirrorciError(f"cannot resolve a relative submodule URL against {log.redact_url(remote_url)}: "
                            "it has no path component left to strip")
    return ".", False


def url_scheme(url: str) -> str:
    """The transport git would use: a URL's scheme, `ssh` for scp-like host:path, `file` for a local path,
    or the transport named by `<transport>::<address>` (ext::, fd::, ...)."""
    transport = re.match(r"([A-Za-z0-9][A-Za-z0-9+.-]*)::", url)
    if transport:
        return transport.group(1).lower()
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme:
        return scheme.group(1).lower()
    colon, slash = url.find(":"), url.find("/")
    if colon > 0 and (slash < 0 or colon < slash) and not re.match(r"[A-Za-z]:[\\/]", url):
        return "ssh"
    return "file"


def list_submodules(git: Git, top: Path) -> list[Submodule]:
    """Every gitlink of the index (the commit just checked out) with its .gitmodules entry."""
    entries = _gitmodules(git, top)
    by_path: dict[str, tuple[str, dict[str, str]]] = {}
    for name, values in entries.items():
        if not _sane_name(name):
            log.warn(f"ignoring suspicious submodule name {name!r} in .gitmodules")
            continue
        if "path" in values:
            by_path[values["path"]] = (name, values)
    found = []
    for path, commit in _gitlinks(git).items():
        name, values = by_path.get(path, ("", {}))
        if not name or not values.get("url"):
            raise MirrorciError(f"no url found for submodule path '{path}' in .gitmodules; "
                                "add it there, or check out without --submodules")
        found.append(Submodule(name, path, values["url"], commit, values.get("update", "")))
    return found


def _gitmodules(git: Git, top: Path) -> dict[str, dict[str, str]]:
    """`submodule.<name>.<key>` entries: from the work tree's .gitmodules, else the index's (a sparse
    checkout may leave it out of the work tree), else HEAD's, as git reads it."""
    file = top / ".gitmodules"
    if file.is_file() and not file.is_symlink():
        source = ["--file", ".gitmodules"]
    elif git.ok("cat-file", "-e", ":.gitmodules"):
        source = ["--blob", ":.gitmodules"]
    elif git.ok("cat-file", "-e", "HEAD:.gitmodules"):
        source = ["--blob", "HEAD:.gitmodules"]
    else:
        return {}
    proc = git.run("config", *source, "-z", "--get-regexp", r"^submodule\.", check=False)
    if proc.returncode not in (0, 1):  # 1: no such entries
        raise GitError(f"cannot read .gitmodules: {proc.stderr.decode(errors='replace').strip()}")
    entries: dict[str, dict[str, str]] = {}
    for item in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        key, _, value = item.partition("\n")
        section, _, rest = key.partition(".")
        name, _, var = rest.rpartition(".")
        if section == "submodule" and name:
            entries.setdefault(name, {})[var] = value
    return entries


def _sane_name(name: str) -> bool:
    """git's check_submodule_name: a name becomes a path under .git/modules, so no `..` component
    (and, here, at least one component: "/" would name .git/modules itself)."""
    parts = re.split(r"[/\\]", name)
    return ".." not in parts and any(part not in ("", ".") for part in parts)


def _modules_dir(git: Git, name: str) -> Path:
    """.git/modules/<name>, joined as git joins it ("modules/%s": a leading "/" does not make it absolute)."""
    base = git.git_path("modules")
    path = base.joinpath(*[part for part in re.split(r"[/\\]", name) if part not in ("", ".")])
    if path == base or _outside(base, path):
        raise MirrorciError(f"submodule name {name!r} does not name a directory under {base}")
    return path


def _gitlinks(git: Git) -> dict[str, str]:
    out = git.run("ls-files", "--stage", "-z").stdout.decode("utf-8", "surrogateescape")
    links = {}
    for entry in out.split("\0"):
        info, _, path = entry.partition("\t")
        fields = info.split()
        if len(fields) == 3 and fields[0] == GITLINK_MODE and fields[2] == "0":
            links[path] = fields[1]
    return links


@dataclass(frozen=True)
class _Scope:
    """What every submodule, nested ones too, takes from the top-level checkout."""

    opts: CheckoutOptions
    server: str | None  # the token's scope: the superproject's scheme://host[:port]/ (http(s) only)
    recursive: bool

    def fetch_url(self, url: str) -> str:
        """actions/checkout's `url.<server>.insteadOf git@<host>:` when there is no ssh key."""
        if self.server and not self.opts.ssh.key:
            scp_prefix = f"git@{urlsplit(self.server).hostname}:"
            if url.startswith(scp_prefix):
                return self.server + url[len(scp_prefix):]
        return url

    def options(self, url: str, worktree: Path, commit: str) -> CheckoutOptions:
        same_server = self.server is not None and auth.url_prefix(url) == self.server
        cache = self.opts.cache_dir
        return dataclasses.replace(
            self.opts, remote_url=url, path=worktree, ref=None, commit=commit, submodules="false",
            clean=True,  # an empty directory stays a new clone; an earlier run's is updated in place
            token=self.opts.token if same_server else None,
            cache_dir=cache / CACHE_SUBDIR / _digest(url) if cache else None,
            fetch_tags=True, filter=None, sparse_checkout=[],  # the superproject's, not the submodules'
            set_safe_directory=False, same_owner_as=None,  # the superproject's checkout covers its whole tree
        )


def _digest(url: str) -> str:
    return hashlib.sha256(log.redact_url(url).encode()).hexdigest()[:16]


def update(opts: CheckoutOptions, superproject: Path, recursive: bool) -> list[dict[str, Any]]:
    """Check out the superproject's submodules; one summary per submodule, nested ones included.

    The list is flat, parents before their own submodules: `path` is relative to the
    superproject's top, `parent` is the path of the submodule it belongs to (None at the top).
    """
    scope = _Scope(opts, auth.url_prefix(opts.remote_url), recursive)
    rows: list[dict[str, Any]] = []
    _update_level(scope, superproject.absolute(), _absolute_local(opts.remote_url), "", rows)
    return rows


def _absolute_local(url: str) -> str:
    """A relative local path is relative to where the command runs, as `git clone` takes it."""
    return os.path.abspath(url) if url_scheme(url) == "file" and "://" not in url else url


def _update_level(scope: _Scope, repo: Path, repo_url: str, prefix: str, rows: list[dict[str, Any]]) -> None:
    git = Git(repo)
    for sm in list_submodules(git, repo):
        display = prefix + sm.path
        url = resolve_url(sm.url, repo_url)
        _check_url(git, display, scope.fetch_url(url))
        git.run("config", f"submodule.{sm.name}.url", url)
        git.run("config", f"submodule.{sm.name}.active", "true")
        if sm.update == "none":
            git.run("config", f"submodule.{sm.name}.update", "none")
            log.info(f"skipping submodule {display} (update = none in .gitmodules)")
            continue
        rows.append(_check_out(scope, git, repo, sm, url, display, prefix.rstrip("/") or None))
        if scope.recursive:
            _update_level(scope, repo / sm.path, url, display + "/", rows)


def _check_url(git: Git, display: str, url: str) -> None:
    """Refuse what git refuses for a submodule URL (CVE-2018-17456, CVE-2020-5260, protocol policy)."""
    if not url or url.startswith("-") or "\n" in url or "\0" in url:
        raise MirrorciError(f"submodule {display}: its URL {log.redact_url(url)!r} is not one git would use")
    scheme = url_scheme(url)
    if scheme in SAFE_PROTOCOLS:
        return
    allowed = git.run("config", "--get", f"protocol.{scheme}.allow", check=False).stdout.decode().strip() or \
        git.run("config", "--get", "protocol.allow", check=False).stdout.decode().strip()
    if allowed != "always":
        raise UsageError(f"submodule {display}: git does not clone a submodule over {scheme} "
                         f"({log.redact_url(url)}) unless protocol.{scheme}.allow is 'always' in git's config")


def _check_out(scope: _Scope, git: Git, repo: Path, sm: Submodule, url: str, display: str,
               parent: str | None) -> dict[str, Any]:
    from .checkout import checkout  # checkout.py calls this module: imported late

    worktree = _worktree(repo, sm.path)
    modules = _modules_dir(git, sm.name)
    fetch_url = scope.fetch_url(url)
    _take_back(worktree, modules, url, fetch_url)
    log.info(f"== submodule {display}: {log.redact_url(url)} at {sm.commit}")
    try:
        result = checkout(scope.options(fetch_url, worktree, sm.commit))
    except MirrorciError as exc:
        wrapped = (UsageError if isinstance(exc, UsageError) else MirrorciError)(f"submodule {display}: {exc}")
        raise wrapped from exc
    _absorb(worktree, modules)
    sub = Git(worktree)
    head = sub.out("rev-parse", "HEAD")
    if head != sm.commit:  # the checkout verified its objects; this is what it left checked out
        raise MirrorciError(f"submodule {display}: checked out {head}, not the gitlink's {sm.commit}")
    if fetch_url != url:
        sub.run("config", "remote.origin.url", url)  # the URL .gitmodules gives, as git leaves it
        if scope.opts.persist_credentials:
            sub.run("config", "--add", f"url.{scope.server}.insteadOf", url[:url.index(":") + 1])
    _local_default_branch(sub)
    return _row(sm, display, parent, url, result)


def _row(sm: Submodule, display: str, parent: str | None, url: str, result: CheckoutResult) -> dict[str, Any]:
    return {
        "name": sm.name, "path": display, "parent": parent, "url": log.redact_url(url), "commit": sm.commit,
        "method": result.method, "bytes_from_mirror": result.bytes_from_mirror,
        "bytes_from_origin": result.bytes_from_origin, "final_fetch": result.final_fetch,
        "workspace": result.workspace, "fallbacks": result.fallbacks,
        "credentials_file": result.credentials_file, "cleanup_files": result.cleanup_files,
    }


def _worktree(repo: Path, path: str) -> Path:
    """The submodule's directory, which must be inside its superproject and reached through no symlink."""
    worktree = repo / path
    current = repo
    for part in Path(path).parts:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise MirrorciError(f"submodule path {path!r} in {repo} is not a directory; it cannot be checked out")
    if _outside(repo, worktree):
        raise MirrorciError(f"submodule path {path!r} leaves its superproject {repo}")
    return worktree


def _outside(repo: Path, path: Path) -> bool:
    return os.path.commonpath([os.path.abspath(repo), os.path.abspath(path)]) != os.path.abspath(repo)


def _take_back(worktree: Path, modules: Path, url: str, fetch_url: str) -> None:
    """An earlier run's submodule of the same origin goes back into its work tree as a plain clone,
    which the checkout then updates in place; anything else in .git/modules/<name> is dropped."""
    inner = worktree / ".git"
    if inner.is_dir() and not inner.is_symlink():
        _remove(modules)  # a clone that was never absorbed: the checkout decides whether to reuse it
        return
    origin = _origin_url(modules) if (modules / "config").is_file() else ""
    if not origin or not (same_url(origin, url) or same_url(origin, fetch_url)):
        _remove(modules)
        return
    if inner.exists() or inner.is_symlink():
        inner.unlink()
    worktree.mkdir(parents=True, exist_ok=True)
    os.replace(modules, inner)
    config = ["config", "--file", str(inner / "config")]
    Git(None).run(*config, "--unset", "core.worktree", check=False)
    Git(None).run(*config, "remote.origin.url", fetch_url)  # what the checkout compares with
    _relocate(inner, modules)


def _origin_url(git_dir: Path) -> str:
    proc = Git(None).run("config", "--file", str(git_dir / "config"), "--get", "remote.origin.url", check=False)
    return proc.stdout.decode(errors="replace").strip()


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _absorb(worktree: Path, modules: Path) -> None:
    """As `git submodule absorbgitdirs`: the clone's .git moves to .git/modules/<name>, a gitfile points at it."""
    inner = worktree / ".git"
    _remove(modules)
    modules.parent.mkdir(parents=True, exist_ok=True)
    os.replace(inner, modules)
    inner.write_text(f"gitdir: {Path(os.path.relpath(modules, worktree)).as_posix()}\n")
    Git(None).run("config", "--file", str(modules / "config"), "core.worktree",
                  Path(os.path.relpath(worktree, modules)).as_posix())
    _relocate(modules, inner)


def _relocate(git_dir: Path, old: Path) -> None:
    """Files the checkout wrote inside the git directory (a persisted credentials file) moved with it:
    the config's include.path entries, and the paths inside those files, follow."""
    config = ["config", "--file", str(git_dir / "config")]
    tool = Git(None)
    includes = tool.run(*config, "--get-all", "include.path", check=False).stdout.decode().splitlines()
    old_prefix = str(old) + os.sep
    if not any(path.startswith(old_prefix) for path in includes):
        return
    tool.run(*config, "--unset-all", "include.path")
    for path in includes:
        moved = Path(str(git_dir) + path[len(str(old)):]) if path.startswith(old_prefix) else Path(path)
        if moved.is_file() and moved.parent == git_dir:
            moved.write_text(moved.read_text().replace(str(old), str(git_dir)))
        tool.run(*config, "--add", "include.path", str(moved))


def _local_default_branch(git: Git) -> None:
    """The branch `git clone` creates for origin's default branch (HEAD stays detached at the gitlink)."""
    tracking = git.run("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False).stdout.decode().strip()
    if not tracking.startswith("refs/remotes/origin/"):
        return
    branch = tracking[len("refs/remotes/origin/"):]
    git.run("update-ref", f"refs/heads/{branch}", tracking)
    git.run("config", f"branch.{branch}.remote", "origin")
    git.run("config", f"branch.{branch}.merge", f"refs/heads/{branch}")
