"""Git mirrors (refs/mirrors/fetch/git and fetch/http): a plain fetch from a full copy.

The fetch runs with credential helpers and extra headers cleared, so a token
configured for origin is never offered to the mirror host.
"""

from __future__ import annotations


from .. import log
from ..errors import GitError, SourceFailed
from ..gitcmd import Git
from .base import FetchContext, Fetched

HAVE_PREFIX = "refs/mirrorci/mirror/"
NO_CREDENTIALS = ("credential.helper=", "http.extraHeader=", "core.askPass=")


class GitMirrorSource:
    name = "git"

    def fetch(self, ctx: FetchContext) -> Fetched:
        urls = ctx.mirrors.git_mirrors + ctx.mirrors.http_mirrors
        if not urls:
            raise SourceFailed("origin advertises no git mirror")
        git = Git(ctx.repo_dir, config=NO_CREDENTIALS + ("fetch.unpackLimit=1",))
        reasons = []
        for url in urls:
            if url.startswith("file:") and not ctx.allow_file_urls:
                reasons.append(f"{url}: file:// URLs need --allow-file-urls")
                continue
            before = git.pack_bytes()
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
            return Fetched(self.name, log.redact_url(url), tips, git.pack_bytes() - before)
        raise SourceFailed("; ".join(reasons))


def drop_mirror_refs(git: Git) -> None:
    git.delete_refs(HAVE_PREFIX)
