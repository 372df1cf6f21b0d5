"""GitHub event payloads as a runner writes them to GITHUB_EVENT_PATH: only the fields checks read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASE = {"id": 100, "full_name": "owner/repo"}
FORK = {"id": 200, "full_name": "someone/repo"}
HEAD_SHA = "1" * 40
MERGE_SHA = "2" * 40


def pull_request_target(head_repo: dict[str, Any] = FORK, head_sha: str = HEAD_SHA,
                        merge_sha: str = MERGE_SHA) -> dict[str, Any]:
    return {"repository": BASE,
            "pull_request": {"head": {"repo": head_repo, "sha": head_sha}, "merge_commit_sha": merge_sha}}


def workflow_run(head_repo: dict[str, Any] = FORK, trigger: str = "pull_request",
                 head_sha: str = HEAD_SHA) -> dict[str, Any]:
    return {"repository": BASE,
            "workflow_run": {"event": trigger, "head_repository": head_repo, "head_sha": head_sha,
                             "head_commit": {"id": head_sha}}}


def write_event(directory: Path, name: str, payload: dict[str, Any]) -> dict[str, str]:
    """The runner's variables for an event: GITHUB_EVENT_NAME and a payload file at GITHUB_EVENT_PATH."""
    path = directory / f"event-{name}.json"
    path.write_text(json.dumps(payload))
    return {"GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(path)}
