"""Where the collector keeps bundle bytes: a folder (default) or an S3-compatible bucket.

A blob is written whole or not at all: the folder store renames a complete, fsync'd file into
place; the bucket store uploads a complete file in one ``put_object``. Names are chosen by the
collector (hex), never by a client.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from airlock._atomic import fsync_dir
from airlock.errors import UsageError


class BlobStore(Protocol):
    """Bundle bytes by name."""

    def put(self, name: str, source: Path) -> None:
        """Store the complete file ``source`` as ``name`` (``source`` may be moved)."""

    def delete(self, name: str) -> None:
        """Remove ``name``; a missing one is not an error."""

    def names(self) -> list[str]:
        """Every stored name."""

    def listing(self) -> list[tuple[str, float]]:
        """Every stored name with the time it was stored (seconds since the epoch)."""


class FolderBlobs:
    """Blobs as files in one folder (0700), each 0600."""

    def __init__(self, folder: Path) -> None:
        from airlock.collector.feedback import private_dir

        self.folder = private_dir(folder)

    def put(self, name: str, source: Path) -> None:
        source.chmod(0o600)
        source.replace(self.folder / name)
        fsync_dir(self.folder)

    def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        return sorted(path.name for path in self.folder.iterdir())

    def listing(self) -> list[tuple[str, float]]:
        found = []
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                found.append((path.name, path.stat().st_mtime))
        return sorted(found)


class BucketBlobs:
    """Blobs as objects in an S3-compatible bucket (``s3://BUCKET/PREFIX``).

    The endpoint and credentials come from the usual AWS variables (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``).
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise UsageError(f"--blob-url {url}: expected s3://BUCKET or s3://BUCKET/PREFIX")
        try:
            import boto3
        except ImportError as error:
            raise UsageError(
                f"--blob-url {url}: S3 storage needs boto3 (pip install 'airlock[serve]')"
            ) from error
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self.client: Any = boto3.client("s3")

    def put(self, name: str, source: Path) -> None:
        with source.open("rb") as body:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)
        source.unlink(missing_ok=True)

    def delete(self, name: str) -> None:
        with contextlib.suppress(self.client.exceptions.NoSuchKey):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def names(self) -> list[str]:
        return [name for name, _ in self.listing()]

    def listing(self) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            found += [
                (entry["Key"][len(self.prefix) :], entry["LastModified"].timestamp())
                for entry in page.get("Contents", [])
            ]
        return sorted(found)


def blob_store(url: str | None, data_dir: Path) -> BlobStore:
    """The store for ``--blob-url`` (``None``: the ``bundles`` folder of the data directory)."""
    if not url:
        return FolderBlobs(data_dir / "bundles")
    if url.startswith("file://"):
        return FolderBlobs(Path(urlsplit(url).path))
    if not url.startswith("s3://"):
        raise UsageError(f"--blob-url {url}: expected s3://BUCKET[/PREFIX] (or file:///FOLDER)")
    return BucketBlobs(url)
