"""How to reach S3 or an S3-compatible store (AWS, MinIO, R2, moto): all configuration.

boto3 reads credentials, region and AWS_ENDPOINT_URL(_S3) itself; the options here
only override what a user sets explicitly. Since boto3 1.36 uploads carry trailing
checksums by default, which several S3-compatible stores reject or mangle, so unless
the user says otherwise checksums are computed only when an operation requires them.

`BACKEND` declares the --s3-* options (for the s3 mirror method and the S3 store
alike) and the AWS credentials a step may pass; see backend.py.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import environment
from .backend import Backend, Secret, option
from .errors import UsageError

ADDRESSING_STYLES = ("auto", "path", "virtual")
CHECKSUM_MODES = ("when_required", "when_supported")


@dataclass
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str | None = None
    checksums: str | None = None
    profile: str | None = None
    part_size_mb: int = 64
    acl: str | None = None  # canned ACL for uploads, e.g. public-read where a bucket policy is not used

    def validate(self) -> None:
        if self.addressing_style and self.addressing_style not in ADDRESSING_STYLES:
            raise UsageError(f"--s3-addressing-style must be one of {', '.join(ADDRESSING_STYLES)}")
        if self.checksums and self.checksums not in CHECKSUM_MODES:
            raise UsageError(f"--s3-checksums must be one of {', '.join(CHECKSUM_MODES)}")
        if not 5 <= self.part_size_mb <= 5120:
            raise UsageError("--s3-part-size must be between 5 and 5120 (MiB), S3's limits for a part")
        if self.endpoint_url and urlsplit(self.endpoint_url).scheme not in ("http", "https"):
            raise UsageError("--s3-endpoint-url must be an http:// or https:// URL")


def split_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise UsageError(f"{url!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.lstrip("/")


def make_client(options: S3Options, overrides: Any = None) -> Any:
    """An S3 client; `overrides` (a botocore Config) is merged last, e.g. a download's timeouts."""
    import boto3
    from botocore.config import Config

    options.validate()
    env = environment.current()
    checksums = options.checksums or env.get("AWS_REQUEST_CHECKSUM_CALCULATION") or "when_required"
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": options.addressing_style or env.get("MIRRORCI_S3_ADDRESSING_STYLE", "auto")},
        request_checksum_calculation=checksums,
        response_checksum_validation=env.get("AWS_RESPONSE_CHECKSUM_VALIDATION", checksums),
        retries={"max_attempts": 5, "mode": "standard"},
    )
    if overrides is not None:
        config = config.merge(overrides)
    # Credentials handed in (see environment.py) are given to boto3 explicitly; otherwise it
    # finds them itself (process environment, profile, instance role).
    keys = {"aws_access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": env.get("AWS_SESSION_TOKEN")}
    given = {k: v for k, v in keys.items() if v} if keys["aws_access_key_id"] and keys["aws_secret_access_key"] else {}
    session = boto3.session.Session(profile_name=options.profile, **given) if options.profile or given \
        else boto3.session.Session()
    endpoint = options.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    region = options.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    return session.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def _from_args(command: str, args: argparse.Namespace) -> S3Options:
    return S3Options(args.s3_endpoint_url, args.s3_region, args.s3_addressing_style, args.s3_checksums,
                     args.s3_profile, args.s3_part_size, args.s3_acl)


BACKEND = Backend(
    name="s3",
    titles={"publish": "S3 (also read from the usual AWS_* environment variables)",
            "checkout": "S3 (also read from the usual AWS_* environment variables)"},
    options=(
        option("--s3-endpoint-url", help="S3-compatible endpoint (MinIO, R2, ...); default AWS_ENDPOINT_URL_S3 / AWS"),
        option("--s3-region", help="bucket region (default: AWS_REGION / profile)"),
        option("--s3-addressing-style", choices=ADDRESSING_STYLES, help="path-style for most self-hosted stores"),
        option("--s3-checksums", choices=CHECKSUM_MODES,
               help="when boto3 adds request checksums (default when_required, which every S3-compatible store "
                    "accepts)"),
        option("--s3-profile", help="AWS profile name"),
        option("--s3-part-size", type=int, default=64, metavar="MIB",
               help="multipart upload part size in MiB; larger files go up in parts (default 64)"),
        option("--s3-acl", help="canned ACL for uploaded objects, e.g. public-read (stores without bucket policies)"),
    ),
    build=_from_args,
    secrets=(
        # The key id is not secret, but kept out of logs as other actions do.
        Secret("aws-access-key-id", "AWS_ACCESS_KEY_ID", help="S3 access key id"),
        Secret("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", help="S3 secret access key"),
        Secret("aws-session-token", "AWS_SESSION_TOKEN", help="S3 session token for temporary credentials"),
    ),
)
