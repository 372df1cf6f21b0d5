"""An S3 bucket (or S3-compatible store) with an optional key prefix."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from ..backend import Settings, setting
from ..errors import MirrorciError, UsageError
from ..s3config import BACKEND, S3Options, make_client, split_s3_url
from .base import Progress, StoredObject, StoreKind

DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


class S3Store:
    def __init__(self, url: str, options: S3Options, client: Any | None = None) -> None:
        self.bucket, prefix = split_s3_url(url)
        self.prefix = prefix.strip("/")
        self.part_size = options.part_size_mb << 20
        self.extra = {"ACL": options.acl} if options.acl else {}
        self.client = client or make_client(options)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def check(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise UsageError(
                    f"--store: bucket {self.bucket!r} does not exist; create it or fix the bucket name") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise UsageError(f"--store: no access to bucket {self.bucket!r}; check the credentials and the "
                                 "bucket policy") from None
            raise MirrorciError(f"cannot reach bucket {self.bucket!r}: {_reason(exc)}") from None
        except Exception as exc:
            raise MirrorciError(f"cannot reach the S3 store for bucket {self.bucket!r}: {_reason(exc)}") from None

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path, content_type: str, progress: Progress | None = None) -> None:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=self.part_size, multipart_chunksize=self.part_size)
        try:
            self.client.upload_file(
                str(path), self.bucket, self.key(key),
                ExtraArgs={"ContentType": content_type, **self.extra}, Config=config, Callback=progress,
            )
        except Exception as exc:  # botocore raises many unrelated types
            raise MirrorciError(f"upload to s3://{self.bucket}/{self.key(key)} failed: {_reason(exc)}") from None

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(key), Body=data, ContentType=content_type,
                                   **self.extra)
        except Exception as exc:
            raise MirrorciError(f"upload to s3://{self.bucket}/{self.key(key)} failed: {_reason(exc)}") from None

    def size_of(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self.key(key))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise MirrorciError(f"cannot read s3://{self.bucket}/{self.key(key)}: {_reason(exc)}") from None
        except Exception as exc:
            raise MirrorciError(f"cannot reach the S3 store: {_reason(exc)}") from None

    def read_prefix(self, key: str, length: int) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(key), Range=f"bytes=0-{length - 1}")["Body"]
            with body:
                return body.read()
        except Exception:  # missing or unreadable: the caller goes on without it
            return None

    def list(self, prefix: str) -> list[StoredObject]:
        root = f"{self.prefix}/" if self.prefix else ""
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(prefix))
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(root):]
                    found.append(StoredObject(key, int(obj["Size"]), obj["LastModified"].timestamp()))
        except Exception as exc:
            raise MirrorciError(f"cannot list s3://{self.bucket}/{self.key(prefix)}: {_reason(exc)}") from None
        return found

    def delete(self, keys: builtins.list[str]) -> dict[str, str]:
        failed: dict[str, str] = {}
        root = f"{self.prefix}/" if self.prefix else ""
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i:i + DELETE_BATCH]
            try:
                reply = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": self.key(k)} for k in batch], "Quiet": True},
                )
            except Exception as exc:
                failed.update({k: _reason(exc) for k in batch})
                continue
            for error in reply.get("Errors", []):
                reason = f"{error.get('Code', '')} {error.get('Message', '')}".strip()
                failed[str(error.get("Key", ""))[len(root):]] = reason
        return failed

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.key(key)}"


def open_s3(spec: str, settings: Settings) -> S3Store:
    return S3Store(spec, setting(settings, BACKEND.name, S3Options))


KIND = StoreKind(scheme="s3", example="s3://bucket/prefix", open=open_s3, backend=BACKEND)


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
