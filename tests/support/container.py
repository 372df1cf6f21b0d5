"""Build and run the project's container image without a Docker engine.

buildah builds the Dockerfile (chroot isolation, as root) and podman runs it
with runc, cgroupfs and the host's network namespace, so the container reaches
the test servers on 127.0.0.1. Everything lives under one state directory:

- ``rootfs-<base>.tar``: a debootstrap minbase of the Debian release the
  Dockerfile's FROM line names, imported as an image with exactly that name
  (``--pull=never``: nothing comes from a container registry);
- ``storage/``: overlay storage for buildah and podman, kept between runs so the
  base image and unchanged build layers are reused.

The state directory is ``$MIRRORCI_CONTAINER_CACHE`` or ``~/.cache/mirrorci-container``;
deleting it starts from scratch.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("buildah", "podman", "debootstrap", "runc")
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "README.md", "LICENSE", "pyproject.toml", "requirements.lock",
                 "entrypoint.py")

# Debian code names the debootstrap base can stand in for.
_DEBIAN_RELEASES = ("bookworm", "trixie", "bullseye")


def missing_requirements() -> str | None:
    """Why the container test cannot run here, or None."""
    if sys.platform != "linux":
        return "container builds need Linux"
    if os.geteuid() != 0:
        return "building images with buildah --isolation chroot and debootstrap needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (scripts/bootstrap.sh installs them)"
    return None


def base_image(dockerfile: Path) -> str:
    """The FROM image of the (single-stage) Dockerfile."""
    for line in dockerfile.read_text().splitlines():
        m = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", line, re.IGNORECASE)
        if m:
            return m.group(1)
    raise ValueError(f"{dockerfile}: no FROM line")


def debian_release(image: str) -> str:
    """`debian:bookworm-slim` / `python:3.11-slim-bookworm` -> `bookworm`."""
    for release in _DEBIAN_RELEASES:
        if release in image:
            return release
    raise ValueError(f"base image {image!r} names no Debian release this test knows how to build")


@dataclass
class Engine:
    """buildah/podman sharing one overlay storage under ``state``."""

    state: Path

    def __post_init__(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        conf = self.state / "conf"
        conf.mkdir(exist_ok=True)
        storage = self.state / "storage"
        (conf / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{storage}/graph"\n'
            f'runroot = "{storage}/run"\n'
        )
        (conf / "containers.conf").write_text(
            "[containers]\n"
            'netns = "host"\n'
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "BUILDAH_ISOLATION": "chroot",
        }

    def run(self, *argv: str | Path, timeout: float = 600, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(a) for a in argv], env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv[:3]))} ... failed ({proc.returncode}):\n"
                               f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def has_image(self, name: str) -> bool:
        return self.run("podman", "image", "exists", name, check=False).returncode == 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.state / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def ensure_base(self, image: str) -> float:
        """Import a debootstrap rootfs as ``image`` unless storage has it; returns seconds spent."""
        if self.has_image(image):
            return 0.0
        started = time.monotonic()
        release = debian_release(image)
        tarball = self.state / f"rootfs-{release}-minbase.tar"
        if not tarball.exists():
            with tempfile.TemporaryDirectory(dir=self.state, prefix="rootfs-") as tmp:
                rootfs = Path(tmp) / "rootfs"
                proc = subprocess.run(["debootstrap", "--variant=minbase", release, str(rootfs)],
                                      capture_output=True, text=True, timeout=900)
                if proc.returncode != 0:
                    raise RuntimeError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
                # Like the official slim images: no apt lists, no caches.
                for junk in ("var/lib/apt/lists", "var/cache/apt/archives"):
                    for child in (rootfs / junk).glob("*"):
                        if child.is_file():
                            child.unlink()
                partial = tarball.with_suffix(".partial")
                subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
                partial.rename(tarball)
        self.run("podman", "import", tarball, image)
        return time.monotonic() - started

    def build(self, context: Path, tag: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.run("buildah", "bud", "--isolation", "chroot", "--pull=never", "--layers", "--force-rm",
                        "--format", "docker", "-t", tag, "-f", context / "Dockerfile", context, timeout=timeout)


def make_context(dest: Path, wheels: bool = True) -> Path:
    """The build context: what .dockerignore lets through, plus pre-built wheels.

    Wheels are built on the host (which has a working package index setup) so the
    image build needs no index access of its own: the Dockerfile installs them
    with --no-index when a wheels/ directory is present.
    """
    dest.mkdir(parents=True)
    for name in CONTEXT_FILES:
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "mirrorci", dest / "mirrorci",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if wheels:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-r", str(ROOT / "requirements.lock"),
             "setuptools>=64", "wheel", "-w", str(dest / "wheels")],
            capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel failed:\n{proc.stderr[-3000:]}")
    return dest


def default_state_dir() -> Path:
    env = os.environ.get("MIRRORCI_CONTAINER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mirrorci-container"
