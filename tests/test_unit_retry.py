"""Retries to origin: which git failures are worth another attempt, and the retry loop itself."""

from __future__ import annotations

import pytest

from mirrorci.errors import GitError
from mirrorci.remote import is_transient, with_retries

TRANSIENT = [
    "git ls-remote failed: fatal: unable to connect to 127.0.0.1: | 127.0.0.1[0: 127.0.0.1]: errno=Connection refused",
    "git fetch failed: fatal: unable to access 'https://git.example/x/': "
    "Failed to connect to git.example port 443 after 2 ms: Couldn't connect to server",
    "git fetch failed: fatal: unable to access 'https://git.example/x/': Could not resolve host: git.example",
    "git fetch failed: error: RPC failed; curl 56 GnuTLS recv error (-54): Error in the pull function. | "
    "fatal: early EOF | fatal: index-pack failed",
    "git fetch failed: error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502",
    "git ls-remote failed: fatal: unable to access 'https://git.example/x/': The requested URL returned error: 503",
    "git fetch failed: fatal: the remote end hung up unexpectedly",
    "git fetch failed: fetch-pack: unexpected disconnect while reading sideband packet",
    "git push failed: error: RPC failed; curl 55 Send failure: Connection reset by peer",
    "git ls-remote failed: fatal: unable to access 'https://git.example/x/': "
    "Operation timed out after 30000 milliseconds",
    "git fetch failed: fatal: unable to access 'https://git.example/x/': The requested URL returned error: 429",
]

PERMANENT = [
    "git ls-remote failed: remote: Invalid username or password. | fatal: Authentication failed for 'https://git.example/x/'",
    "git ls-remote failed: fatal: could not read Username for 'https://git.example': terminal prompts disabled",
    "git ls-remote failed: remote: Repository not found. | fatal: repository 'https://git.example/x/' not found",
    "git fetch failed: fatal: 'nowhere' does not appear to be a git repository | "
    "fatal: Could not read from remote repository.",
    "git fetch failed: git@git.example: Permission denied (publickey). | fatal: Could not read from remote repository.",
    "git ls-remote failed: fatal: unable to access 'https://git.example/x/': The requested URL returned error: 403",
    "git ls-remote failed: error: RPC failed; HTTP 401 curl 22 The requested URL returned error: 401",
    "git ls-remote failed: fatal: unable to access 'https://git.example/x/': The requested URL returned error: 404",
    "git fetch failed: fatal: remote error: access denied or repository not exported: /x.git",
    # A push refused by its lease or a hook: another attempt would be refused the same way.
    "git push failed: To git://127.0.0.1/x.git | ! [rejected]        refs/mirrors/bundle/http (stale info) | "
    "error: failed to push some refs",
    "git push failed: ! [remote rejected] refs/mirrors/bundle/http (pre-receive hook declined) | "
    "error: failed to push some refs",
    "git push failed: ! [rejected] refs/mirrors/bundle/http (atomic push failed) | error: failed to push some refs",
    # Both kinds of words: the permanent one decides.
    "git fetch failed: fatal: Authentication failed | fatal: the remote end hung up unexpectedly",
    # Not a network failure at all.
    "git fetch failed: fatal: couldn't find remote ref refs/mirrors/bundle/http",
    "git cat-file failed: fatal: Not a valid object name",
]


@pytest.mark.parametrize("message", TRANSIENT)
def test_transient_failures_are_retried(message):
    assert is_transient(message)


@pytest.mark.parametrize("message", PERMANENT)
def test_permanent_failures_are_not_retried(message):
    assert not is_transient(message)


class FlakyAction:
    """Fails with the given messages in turn, then returns "done"."""

    def __init__(self, *failures: str) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise GitError(self.failures.pop(0))
        return "done"


REFUSED = TRANSIENT[0]


def test_transient_failures_are_retried_with_the_given_delays(capsys):
    action, slept = FlakyAction(REFUSED, REFUSED), []
    assert with_retries(action, "listing refs", delays=(0.2, 0.5), sleep=slept.append) == "done"
    assert action.calls == 3
    assert slept == [0.2, 0.5]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert "listing refs: attempt 1 of 3 failed, retrying in 0.2s" in lines[0]
    assert "attempt 2 of 3" in lines[1] and "Connection refused" in lines[1]


def test_the_last_delay_repeats_when_there_are_more_attempts_than_delays():
    action, slept = FlakyAction(REFUSED, REFUSED, REFUSED), []
    assert with_retries(action, "x", attempts=4, delays=(1.0,), sleep=slept.append) == "done"
    assert slept == [1.0, 1.0, 1.0]


def test_a_permanent_failure_is_raised_at_once(capsys):
    action, slept = FlakyAction(PERMANENT[0]), []
    with pytest.raises(GitError, match="Authentication failed") as raised:
        with_retries(action, "listing refs", sleep=slept.append)
    assert action.calls == 1 and slept == []
    assert "attempt" not in str(raised.value)
    assert capsys.readouterr().err == ""


def test_a_permanent_failure_after_a_transient_one_stops_the_retries():
    stale = next(m for m in PERMANENT if "stale info" in m)
    action, slept = FlakyAction(REFUSED, stale), []
    with pytest.raises(GitError, match="stale info"):
        with_retries(action, "pushing", sleep=slept.append)
    assert action.calls == 2 and slept == [1.0]


def test_giving_up_says_how_many_attempts_were_made():
    action, slept = FlakyAction(REFUSED, REFUSED, REFUSED), []
    with pytest.raises(GitError, match=r"Connection refused \(after 3 attempts\)"):
        with_retries(action, "listing refs", sleep=slept.append)
    assert action.calls == 3 and slept == [1.0, 3.0]


def test_one_attempt_means_no_retry():
    action, slept = FlakyAction(REFUSED), []
    with pytest.raises(GitError) as raised:
        with_retries(action, "x", attempts=1, sleep=slept.append)
    assert str(raised.value) == REFUSED and slept == []


def test_other_exceptions_are_not_retried():
    calls = []

    def broken() -> None:
        calls.append(1)
        raise OSError("disk on fire")

    with pytest.raises(OSError):
        with_retries(broken, "x", sleep=lambda _: None)
    assert calls == [1]
