"""The checkout action without an image: checkout/dist/main.js and post.js run with node as a runner runs them.

The launcher finds python3 and runs the CI entry from the action's own files; the
post step removes the persisted credentials. The checkout path must import nothing
but the standard library: a guard refuses every third-party module the image has
(boto3, torf, gitpython, ...) and records any attempt, also one a `try` would hide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirrorci import ondemand
from mirrorci.errors import SourceFailed
from tests.support.cli import run_cli
from tests.support.e2e import assert_same_as_git_clone, publish_to_static
from tests.support.github import parse_github_output
from tests.support.repos import git

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "checkout" / "dist" / "main.js"
POST = ROOT / "checkout" / "dist" / "post.js"
TOKEN = "ghs_" + uuid.uuid4().hex
NODE = shutil.which("node")
# What the image installs besides the standard library (requirements.lock), by top-level module.
THIRD_PARTY = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "torf", "transmission_rpc", "requests",
               "urllib3", "certifi", "charset_normalizer", "idna", "git", "gitdb", "smmap", "libtorrent")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")
# actions/checkout's defaults leave a depth-1 fallback and no tags:
# these inputs make the step leave what git clone does.
LIKE_GIT_CLONE = {"fetch-tags": "true", "fetch-depth": "0"}

# Stands in for python3 (MIRRORCI_PYTHON): refuses third-party modules, records every attempt,
# then runs `-c CODE args...` as python would.
GUARD = textwrap.dedent(f"""
    import atexit, os, sys
    BLOCKED = {THIRD_PARTY!r}
    tried = []

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                tried.append(name)
                raise ModuleNotFoundError(f"No module named {{name!r}} (refused on the checkout path)")
            return None

    def report():
        with open(os.environ["MIRRORCI_TEST_IMPORT_LOG"], "a") as fh:
            fh.write("".join(n + "\\n" for n in ["#guarded", *tried]))

    sys.meta_path.insert(0, Refuse())
    atexit.register(report)
    assert sys.argv[1] == "-c"
    code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]
    sys.path.insert(0, "")
    exec(compile(code, "<string>", "exec"), {{"__name__": "__main__"}})
""")


@dataclass
class Step:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    state: dict[str, str]
    summary: str
    imports: list[str]


class Runner:
    """What a GitHub runner gives a JavaScript action: file commands, RUNNER_TEMP, the tool cache, INPUT_*."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.temp = tmp / "runner-temp"
        self.tool_cache = tmp / "tool-cache"
        self.temp.mkdir()
        self.tool_cache.mkdir()
        self.guard = tmp / "guard.py"
        self.guard.write_text(GUARD)
        wrapper = tmp / "guarded-python"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I "{self.guard}" "$@"\n')
        wrapper.chmod(0o755)
        self.python = str(wrapper)

    def env(self, workspace: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "STATE_", "RUNNER_"))}
        return {
            **base, "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(self.temp), "RUNNER_TOOL_CACHE": str(self.tool_cache),
            "GIT_CONFIG_GLOBAL": str(self.tmp / "home.gitconfig"), "MIRRORCI_PYTHON": self.python,
            "MIRRORCI_TEST_IMPORT_LOG": str(self.tmp / "imports.log"), **(extra or {}),
        }

    def main(self, workspace: Path, inputs: dict[str, str], env: dict[str, str] | None = None) -> Step:
        files = self.tmp / f"file-commands-{uuid.uuid4().hex[:6]}"
        files.mkdir()
        for name in ("output", "state", "summary"):
            (files / name).touch()
        (self.tmp / "imports.log").write_text("")
        full = {**self.env(workspace, env), "GITHUB_OUTPUT": str(files / "output"),
                "GITHUB_STATE": str(files / "state"), "GITHUB_STEP_SUMMARY": str(files / "summary"),
                **{f"INPUT_{k.upper()}": v for k, v in inputs.items()}}
        proc = subprocess.run([NODE, str(MAIN)], cwd=workspace, env=full, capture_output=True, text=True, timeout=300)
        return Step(proc.returncode, proc.stdout, proc.stderr, parse_github_output((files / "output").read_text()),
                    parse_github_output((files / "state").read_text()), (files / "summary").read_text(),
                    self._imports())

    def _imports(self) -> list[str]:
        """Third-party modules the guarded python was asked for; fails if the guard never ran."""
        seen = (self.tmp / "imports.log").read_text().split()
        assert "#guarded" in seen, "the launcher did not run the python MIRRORCI_PYTHON names"
        return [name for name in seen if name != "#guarded"]

    def post(self, workspace: Path, state: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env = {**self.env(workspace), **{f"STATE_{k}": v for k, v in state.items()}}
        return subprocess.run([NODE, str(POST)], cwd=workspace, env=env, capture_output=True, text=True, timeout=60)


def event_env(origin) -> dict[str, str]:
    server, name = origin.http_url.rsplit("/", 1)
    return {"GITHUB_SERVER_URL": server, "GITHUB_REPOSITORY": name, "GITHUB_REF": "refs/heads/main",
            "GITHUB_SHA": git(origin.path, "rev-parse", "main")}


def workspace_with_a_decoy(tmp_path: Path) -> Path:
    """A workspace an earlier job left a `mirrorci` package in: it must not stand in for the action's."""
    ws = tmp_path / "workspace"
    (ws / "mirrorci" / "ci").mkdir(parents=True)
    for init in (ws / "mirrorci" / "__init__.py", ws / "mirrorci" / "ci" / "__init__.py"):
        init.write_text("raise SystemExit('the workspace shadowed the action')\n")
    return ws


def test_checkout_and_post_step_as_a_runner_runs_them(served_origin, static_server, tmp_path):
    published = publish_to_static(served_origin, static_server, tmp_path)
    runner = Runner(tmp_path)
    ws = workspace_with_a_decoy(tmp_path)

    inputs = {"token": TOKEN, "persist-credentials": "true", "clean": "true", "cache-dir": str(tmp_path / "cache"),
              **LIKE_GIT_CLONE}
    step = runner.main(ws, inputs, event_env(served_origin))

    assert step.code == 0, step.stdout + step.stderr
    assert step.imports == []
    assert step.outputs["method"] == "http" and step.outputs["bytes-from-origin"] == "0"
    assert int(step.outputs["bytes-from-mirror"]) >= published["bundle"]["size"]
    assert not (ws / "mirrorci").exists()  # clean: the decoy is gone, the clone is there
    assert_same_as_git_clone(ws, served_origin.http_url, tmp_path)
    assert TOKEN not in step.stdout + step.stderr.replace(f"::add-mask::{TOKEN}", "") + step.summary

    # persist-credentials: a 0600 file under RUNNER_TEMP that .git/config includes; its path handed to post
    assert step.state["repository_path"] == str(ws)
    creds = Path(step.state["credentials_file"])
    assert creds.parent == runner.temp and creds.stat().st_mode & 0o077 == 0
    assert git(ws, "config", "--get-all", "include.path") == str(creds)
    expected = "basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    prefix = served_origin.http_url.split("/", 3)
    assert expected in git(ws, "config", "--get-all", f"http.{prefix[0]}//{prefix[2]}/.extraheader")
    assert TOKEN not in (ws / ".git/config").read_text() and expected not in (ws / ".git/config").read_text()

    post = runner.post(ws, step.state)

    assert post.returncode == 0 and "::warning::" not in post.stdout, post.stdout + post.stderr
    assert "removed the persisted credentials (1 file)" in post.stdout
    assert not creds.exists()
    assert git(ws, "config", "--get-all", "include.path", check=False) == ""
    assert git(ws, "config", "--get-regexp", "extraheader", check=False) == ""
    assert git(ws, "status", "--porcelain") == ""  # the clone itself is untouched


def test_post_step_removes_what_a_failed_run_left(tmp_path):
    """Only the repository's path reached the state (the run failed later): the include names the file."""
    runner = Runner(tmp_path)
    ws = tmp_path / "ws"
    git(tmp_path, "init", "-q", str(ws))
    creds = runner.temp / f"mirrorci-credentials-{uuid.uuid4().hex[:12]}.config"
    creds.write_text('[http "https://example.invalid/"]\n\textraheader = x\n')
    other = tmp_path / "kept.config"
    other.write_text("[core]\n")
    git(ws, "config", "--add", "include.path", str(other))
    git(ws, "config", "--add", "include.path", str(creds))

    post = runner.post(ws, {"repository_path": str(ws)})

    assert post.returncode == 0 and "removed the persisted credentials (1 file)" in post.stdout, post.stdout
    assert not creds.exists() and other.exists()
    assert git(ws, "config", "--get-all", "include.path") == str(other)
    assert runner.post(ws, {}).stdout == ""  # nothing handed over: nothing to do


def test_post_step_removes_a_persisted_ssh_key_and_listed_files(tmp_path):
    """An ssh key persisted beside the credentials include goes with it; remove_files lists any other leftover."""
    runner = Runner(tmp_path)
    ws = tmp_path / "ws"
    git(tmp_path, "init", "-q", str(ws))
    base = runner.temp / f"mirrorci-credentials-{uuid.uuid4().hex[:12]}"
    for suffix in (".config", ".key", ".known_hosts"):
        Path(f"{base}{suffix}").write_text("x\n")
    git(ws, "config", "--add", "include.path", f"{base}.config")
    left = [runner.temp / "left-1", runner.temp / "left 2"]
    for path in left:
        path.write_text("x")
    kept = runner.temp / "kept"
    kept.mkdir()

    post = runner.post(ws, {"repository_path": str(ws), "credentials_file": f"{base}.config",
                            "remove_files": "\n".join([*map(str, left), "relative/ignored", str(kept)])})

    assert post.returncode == 0 and "removed the persisted credentials (1 file)" in post.stdout, post.stdout
    assert not any(Path(f"{base}{suffix}").exists() for suffix in (".config", ".key", ".known_hosts"))
    assert not any(path.exists() for path in left)
    assert kept.is_dir() and f"::warning::cannot remove {kept}" in post.stdout  # a directory is never deleted
    assert git(ws, "config", "--get-all", "include.path", check=False) == ""


def test_fork_pull_request_refusal_through_the_launcher(tmp_path):
    """Inputs reach python as the runner passes them (INPUT_ with hyphens kept), the refusal as one error line."""
    runner = Runner(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps({"repository": {"id": 1}, "pull_request": {"head": {"repo": {"id": 2}}}}))
    env = {"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_EVENT_PATH": str(payload),
           "GITHUB_REPOSITORY": "owner/repo", "GITHUB_SERVER_URL": "http://127.0.0.1:9"}

    step = runner.main(ws, {"ref": "refs/pull/1/merge", "show-progress": "false"}, env)

    assert step.code == 2, step.stdout + step.stderr
    errors = [line for line in (step.stdout + step.stderr).splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "allow-unsafe-pr-checkout: true" in errors[0]
    allowed = runner.main(ws, {"ref": "refs/pull/1/merge", "allow-unsafe-pr-checkout": "true"}, env)
    assert allowed.code == 1 and "allow-unsafe-pr-checkout" not in allowed.stderr  # let through, then nothing listens


@pytest.mark.parametrize("case", ["streaming", "git-mirror", "s3-uninstallable"])
def test_checkout_path_imports_only_the_standard_library(case, served_origin, static_server, git_daemon,
                                                          git_serve_root, moto, tmp_path):
    runner = Runner(tmp_path)
    inputs = {"persist-credentials": "false", "verify": "full" if case == "streaming" else "auto", **LIKE_GIT_CLONE}
    env = {**event_env(served_origin)}
    if case == "git-mirror":
        mirror = f"mirror-{uuid.uuid4().hex[:8]}.git"
        git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(git_serve_root / mirror))
        publish_to_static(served_origin, static_server, tmp_path, "--git-mirror", git_daemon.url_for(mirror))
        inputs["prefer"] = "git"
    elif case == "s3-uninstallable":
        from tests.support.s3_server import s3_client, s3_env

        bucket = f"mirrors-{uuid.uuid4().hex[:8]}"
        s3_client(moto.endpoint_url).create_bucket(Bucket=bucket)
        work = tmp_path / "publisher"
        git(tmp_path, "clone", "-q", "--mirror", served_origin.git_url, str(work))
        run_cli("publish", "--repo", work, "--store", f"s3://{bucket}/git/", "--s3-addressing-style", "path",
                env=s3_env(moto.endpoint_url))
        inputs |= {"prefer": "s3", "s3-endpoint-url": moto.endpoint_url, "s3-addressing-style": "path"}
        # boto3 is refused, and pip finds nothing to install it from: s3 is a fallback with its reason.
        empty = tmp_path / "no-wheels"
        empty.mkdir()
        env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty), "PIP_CONSTRAINT": "", "PIP_EXTRA_INDEX_URL": ""}
    else:
        publish_to_static(served_origin, static_server, tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()

    step = runner.main(ws, inputs, env)

    assert step.code == 0, step.stdout + step.stderr
    # Only the s3 method, once tried, reaches for its own packages.
    assert set(step.imports) <= ({"boto3", "botocore"} if case == "s3-uninstallable" else set()), step.stderr
    expected = {"streaming": "http", "git-mirror": "git", "s3-uninstallable": "origin"}[case]
    assert step.outputs["method"] == expected, step.stderr
    assert_same_as_git_clone(ws, served_origin.http_url, tmp_path)
    if case == "s3-uninstallable":
        installs = [line for line in step.stderr.splitlines() if line.startswith("installing boto3==")]
        assert len(installs) == 1 and str(runner.tool_cache / "mirrorci-deps") in installs[0], step.stderr
        assert "Fallback from s3" in step.summary and "installing boto3==" in step.summary


def test_no_suitable_python_is_one_error_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = bin_dir / "python3"
    old.write_text('#!/bin/sh\necho "3.8 /usr/bin/python3.8"\n')
    old.chmod(0o755)
    env = {"PATH": str(bin_dir), "GITHUB_ACTIONS": "true"}  # python3 3.8, and no python

    proc = subprocess.run([NODE, str(MAIN)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("::error::"), lines
    assert "Python 3.10 or later" in lines[0] and "python3 is 3.8" in lines[0] and "setup-python" in lines[0]


def test_the_first_new_enough_python_is_used(tmp_path):
    """MIRRORCI_PYTHON, then python3, then python; an interpreter that is too old is skipped."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text('#!/bin/sh\necho "3.9 /opt/old/python3"\n')
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "python3").chmod(0o755)
    script = (f"const m = require({str(MAIN)!r}); "
              "console.log(JSON.stringify(m.findPython(process.env, 'linux')))")
    proc = subprocess.run([NODE, "-e", script], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60)
    found = json.loads(proc.stdout)
    assert found["command"] == ["python"] and Path(found["executable"]).exists(), found
    assert found["version"] == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_hyphenated_inputs_also_reach_python_in_a_form_a_shell_keeps():
    """INPUT_FETCH-TAGS is no shell name: a python3 that is a shell script would drop it, not INPUT_FETCH_TAGS."""
    script = (f"const m = require({str(MAIN)!r}); console.log(JSON.stringify(m.childEnv("
              "{'INPUT_FETCH-TAGS': 'true', 'INPUT_SSH_USER': 'given', 'INPUT_SSH-USER': 'other', 'HOME-X': '1'})))")
    proc = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=60)
    env = json.loads(proc.stdout)
    assert env["INPUT_FETCH_TAGS"] == env["INPUT_FETCH-TAGS"] == "true"
    assert env["INPUT_SSH_USER"] == "given" and "HOME_X" not in env  # an existing spelling wins; other names untouched


# -- installing on demand -------------------------------------------------------

def fake_wheel(dest: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel: one module that says where it was imported from."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = dest / f"{dist}-py3-none-any.whl"
    files = {
        f"{name.replace('-', '_')}.py": "WHERE = __file__\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    def digest(content: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{n},sha256={digest(c)},{len(c.encode())}\n" for n, c in files.items())
    record += f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for n, c in files.items():
            zf.writestr(n, c)
        zf.writestr(f"{dist}.dist-info/RECORD", record)
    return path


def test_packages_are_installed_once_into_the_tool_cache_and_reused(tmp_path, monkeypatch, capsys):
    module = f"mirrorci_fake_dep_{uuid.uuid4().hex[:6]}"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    fake_wheel(wheels, module, "1.2.3")
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# pins\n{module}==1.2.3\nother==1.0\n")
    deps = tmp_path / "tool-cache" / "mirrorci-deps"
    monkeypatch.setattr(ondemand, "LOCK", lock)
    monkeypatch.setitem(ondemand.FEATURES, "fake", ((module, module),))
    monkeypatch.setenv(ondemand.DEPS_ENV, str(deps))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setattr(sys, "path", list(sys.path))

    ondemand.require("fake", "the fake method", timeout=120)

    installed = __import__(module)
    target = Path(installed.WHERE).parent
    assert target.parent == deps / f"{sys.version_info[0]}.{sys.version_info[1]}" and len(target.name) == 16
    assert (target / ondemand.COMPLETE).exists()
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "installing" in line] == [
        f"installing {module}==1.2.3 for the fake method into {target}"]

    # Another job on the same runner: found ready, nothing installed, nothing logged.
    sys.path.remove(str(target))
    sys.modules.pop(module)
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    ondemand.require("fake", "the fake method", timeout=120)
    assert __import__(module).WHERE == installed.WHERE and "installing" not in capsys.readouterr().err


def test_an_impossible_install_is_a_fallback_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(ondemand, "LOCK", tmp_path / "requirements.lock")
    (tmp_path / "requirements.lock").write_text("mirrorci-not-a-package==9.9\n")
    monkeypatch.setitem(ondemand.FEATURES, "fake", (("mirrorci_not_a_package", "mirrorci-not-a-package"),))
    monkeypatch.delenv(ondemand.DEPS_ENV, raising=False)
    with pytest.raises(SourceFailed, match="needs mirrorci-not-a-package, which is not installed"):
        ondemand.require("fake", "the fake method")

    monkeypatch.setenv(ondemand.DEPS_ENV, str(tmp_path / "deps"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    with pytest.raises(SourceFailed, match="installing mirrorci-not-a-package==9.9 failed: .*"):
        ondemand.require("fake", "the fake method", timeout=120)
    assert [p.name for p in (tmp_path / "deps").rglob("*") if p.name.startswith(".tmp")] == []


def test_lock_pins_are_found_by_normalized_name():
    lock = "GitPython==3.2.1\nlibtorrent==2.1.1; platform_machine == \"x86_64\"\ntransmission-rpc==7.0.12\n"
    assert ondemand.pins(["transmission_rpc", "libtorrent"], lock) == [
        'libtorrent==2.1.1; platform_machine == "x86_64"', "transmission-rpc==7.0.12"]
    real = (ROOT / "requirements.lock").read_text()
    for feature in ondemand.FEATURES:
        dists = [dist for _, dist in ondemand.FEATURES[feature]]
        assert len(ondemand.pins(dists, real)) == len(dists), feature
