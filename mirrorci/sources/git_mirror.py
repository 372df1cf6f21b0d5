"""Git mirrors (refs/mirrors/fetch/git and fetch/http): a plain fetch from a full copy.

The fetch runs with credential helpers and extra headers cleared, so a token
configured for origin is never offered to the mirror host.
"""

from __future__ import annotations

from pathlib import Path

from .. import log
from ..errors import GitError, SourceFailed
from ..gitcmd import Git
from .base import FetchContext, Fetched

HAVE_PREFIX = "refs/mirrorci/mirror/"
NO_CREDENTIALS = ("credential.helper=", "http.extraHeader=", "core.askPass=")


def _pack_bytes(pack_dir: Path) -> int:
    return sum(p.stat().st_size for p in pack_dir.glob("pack-*.pack"))


class GitMirrorSource:
    name = "git"

    def fetch(self, ctx: FetchContext) -> Fetched:
        urls = ctx.mirrors.git_mirrors + ctx.mirrors.http_mirrors
        if not urls:
            raise SourceFailed("origin advertises no git mirror")
        git = Git(ctx.repo_dir, config=NO_CREDENTIALS + ("fetch.unpackLimit=1",))
        pack_dir = Path(git.out("rev-parse", "--path-format=absolute", "--git-path", "objects/pack"))
        reasons = []
        for url in urls:
            if url.startswith("file:") and not ctx.allow_file_urls:
                reasons.append(f"{url}: file:// URLs need --allow-file-urls")
                continue
            before = _pack_bytes(pack_dir)
            try:
                git.run(
                    "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url,
                    f"+refs/heads/*:{HAVE_PREFIX}heads/*", f"+refs/tags/*:{HAVE_PREFIX}tags/*",
                )
            except GitError as exc:
                reasons.append(f"{log.redact_url(url)}: {exc}")
                continue
            tips = {}
            for line in git.out("for-each-ref", "--format=%(objectname) %(refname)", HAVE_PREFIX).splitlines():
                oid, ref = line.split(" ", 1)
                tips["refs/" + ref[len(HAVE_PREFIX):]] = oid
            return Fetched(self.name, log.redact_url(url), tips, _pack_bytes(pack_dir) - before)
        raise SourceFailed("; ".join(reasons))


def drop_mirror_refs(git: Git) -> None:
    refs = git.out("for-each-ref", "--format=%(refname)", HAVE_PREFIX).split()
    if refs:
        git.run("update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs))
