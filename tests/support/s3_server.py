"""A real S3-compatible endpoint (``moto_server``) in a subprocess.

Running moto out of process (rather than ``mock_aws``) lets tests drive
mirrorci through its CLI and subprocesses, and exercises real HTTP signing.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

from .ports import free_port
from .processes import ServerProcess

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def _moto_command() -> list[str]:
    """Prefer the moto_server next to this interpreter (skips shims), then PATH, then -m."""
    beside = Path(sys.executable).with_name("moto_server")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("moto_server")
    return [found] if found else [sys.executable, "-m", "moto.server"]


class MotoServer(ServerProcess):
    """``moto_server`` on 127.0.0.1; ``reset()`` wipes all buckets between tests."""

    def __init__(self) -> None:
        super().__init__("moto_server", group=False)
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        self.port = free_port()
        self.start([*_moto_command(), "-H", "127.0.0.1", "-p", str(self.port)], ready=self._answers, timeout=30)
        return self

    def _answers(self) -> None:
        """Ready once moto's own API answers; raises until then."""
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as resp:
            resp.read()

    def reset(self) -> None:
        """Drop all state in the server (buckets, objects)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def s3_client(endpoint_url: str) -> Any:
    """boto3 S3 client for the moto endpoint (path-style, SigV4, dummy credentials)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def s3_env(endpoint_url: str) -> dict[str, str]:
    """Environment for subprocesses (e.g. the mirrorci CLI) to talk to moto."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": endpoint_url,
    }
