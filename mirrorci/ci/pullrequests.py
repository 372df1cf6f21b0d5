"""`allow-unsafe-pr-checkout`: actions/checkout v7's refusal of fork pull-request code in trusted events.

`pull_request_target` and `workflow_run` workflows run with the base repository's
token, secrets and cache scope. Checking out a fork's pull-request code there is
the "pwn request" pattern, so, unless the step sets `allow-unsafe-pr-checkout:
true`, a checkout is refused when the event comes from a fork (the head
repository's id differs from the base's) and what is asked for is the fork's
code: the fork repository itself, a `refs/pull/N/head|merge` ref, or one of the
pull request's commits named in the event payload. The default checkout (the
workflow's own repository, no `ref` input) is never refused: it is the event's
trusted ref and commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

PR_REF = re.compile(r"^refs/pull/[0-9]+/(?:head|merge)$")
EVENTS = ("pull_request_target", "workflow_run")


@dataclass(frozen=True)
class Request:
    """What the step is about to check out."""

    repository: str  # owner/name
    ref: str
    commit: str | None
    default: bool  # the workflow's own repository with no `ref` input


def _get(payload: Mapping[str, Any], path: str) -> Any:
    node: Any = payload
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _fork_head(event: str, payload: Mapping[str, Any]) -> tuple[Any, Any, set[str]] | None:
    """(head repository id, its owner/name, the pull request's commits) of a pull-request event, else None."""
    shas: list[Any] = []
    if event == "pull_request_target":
        head_id = _get(payload, "pull_request.head.repo.id")
        head_name = _get(payload, "pull_request.head.repo.full_name")
        shas += [_get(payload, "pull_request.head.sha"), _get(payload, "pull_request.merge_commit_sha")]
    else:
        trigger = _get(payload, "workflow_run.event")
        if not isinstance(trigger, str) or not trigger.startswith("pull_request"):
            return None
        head_id = _get(payload, "workflow_run.head_repository.id")
        head_name = _get(payload, "workflow_run.head_repository.full_name")
        shas.append(_get(payload, "workflow_run.head_commit.id"))
        if trigger != "pull_request_target":  # there head_sha is the base branch's commit
            shas.append(_get(payload, "workflow_run.head_sha"))
    return head_id, head_name, {s.lower() for s in shas if isinstance(s, str) and s}


def refusal(event: str, payload: Mapping[str, Any], request: Request) -> str | None:
    """Why this checkout is refused under actions/checkout v7's rule, or None when it is not."""
    if request.default or event not in EVENTS:
        return None
    base_id = _get(payload, "repository.id")
    head = _fork_head(event, payload)
    if not isinstance(base_id, int) or head is None:
        return None
    head_id, head_name, shas = head
    if not isinstance(head_id, int) or head_id == base_id:
        return None  # not a fork: the same repository's branches are trusted
    fork_repository = isinstance(head_name, str) and request.repository.lower() == head_name.lower()
    fork_commit = bool(request.commit) and str(request.commit).lower() in shas
    if not (fork_repository or PR_REF.match(request.ref) or fork_commit):
        return None
    return (f"refusing to check out fork pull request code in a '{event}' workflow, which runs with the base "
            "repository's token and secrets; if that is intended, set allow-unsafe-pr-checkout: true on this step")


def check(event: str, payload: Mapping[str, Any], request: Request, allowed: bool) -> None:
    """Raise a UsageError (exit code 2) when the checkout is refused and not allowed."""
    reason = None if allowed else refusal(event, payload, request)
    if reason:
        raise UsageError(reason)
