"""Bundles read through the S3 API with the client's own credentials (s3:// URIs)."""

from __future__ import annotations

from typing import Any, BinaryIO

from ..errors import SourceFailed
from ..s3config import make_client, split_s3_url
from .base import FetchContext, Fetched, bundles_for, first_working


class _S3Body:
    def __init__(self, body: Any) -> None:
        self.body = body

    def read(self, n: int = -1) -> bytes:
        try:
            return self.body.read(n if n >= 0 else None)
        except Exception as exc:  # botocore and urllib3 raise their own types
            raise SourceFailed(f"S3 download interrupted: {type(exc).__name__}") from None

    def __enter__(self) -> "_S3Body":
        return self

    def __exit__(self, *exc: object) -> None:
        self.body.close()


class S3Source:
    name = "s3"

    def fetch(self, ctx: FetchContext) -> Fetched:
        entries = bundles_for(ctx, ("s3",))
        client = make_client(ctx.s3) if entries else None

        def opener(uri: str) -> BinaryIO:
            bucket, key = split_s3_url(uri)
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as exc:
                raise SourceFailed(f"S3 get s3://{bucket}/{key} failed: {str(exc).splitlines()[0][:200]}") from None
            return _S3Body(body)  # type: ignore[return-value]

        return first_working(ctx, self.name, entries, opener)
