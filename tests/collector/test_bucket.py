"""Bundles in an S3-compatible bucket: a real S3 server (moto's) on loopback, started by the
tests (``s3_endpoint`` in ``conftest.py``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from airlock.collector.blobs import BucketBlobs, blob_store
from airlock.errors import UsageError
from airlock.policy.collection import OrgTerms
from tests.collector.harness import post_bundle, running
from tests.collector.ingest import airlock_serve_sweep


def _bundle(url: str, key: str, session: str, body: bytes, idem: str) -> httpx.Response:
    return post_bundle(url, key, body, idem, session=session)


def test_bundles_in_a_bucket_stored_and_deleted(
    bucket: str, database_url: str, tmp_path: Path
) -> None:
    """A bundle goes to the bucket whole; deleting its session removes the object; ZDR puts none."""
    import boto3

    blobs = BucketBlobs(f"s3://{bucket}/org-data")
    with running(database_url, tmp_path / "data", blobs=blobs) as served:
        key = served.key("acme")
        body = b"bundle in a bucket" * 100
        assert _bundle(served.url, key, "s-1", body, "b1").status_code == 201
        assert _bundle(served.url, key, "s-2", b"other" * 10, "b2").status_code == 201
        (name, _) = sorted(blobs.names())
        objects = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
        assert all(entry["Key"].startswith("org-data/") for entry in objects)
        stored = {
            boto3.client("s3").get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            for entry in objects
        }
        assert body in stored and name
        gone = httpx.delete(
            f"{served.url}/v1/sessions/s-1", headers={"Authorization": f"Bearer {key}"}
        )
        assert gone.json()["removed"] == {"feedback_bundle": 1}
        assert len(blobs.names()) == 1
        zdr = served.key("zdr", OrgTerms(zero_data_retention=True))
        assert _bundle(served.url, zdr, "s-3", b"never" * 10, "b3").status_code == 202
        assert len(blobs.names()) == 1
        assert not list((tmp_path / "data" / "bundles").glob("*"))


def test_the_sweep_removes_expired_bundles_from_the_bucket(
    bucket: str, database_url: str, tmp_path: Path
) -> None:
    """`airlock serve --sweep --blob-url s3://…` (the real command): a bundle past its five
    years goes, object and row; a recent one stays."""
    blobs = BucketBlobs(f"s3://{bucket}/kept")
    long_ago = time.time() - 6 * 365 * 86400.0
    with running(database_url, tmp_path / "data", clock=lambda: long_ago, blobs=blobs) as old:
        key = old.key("acme")
        assert _bundle(old.url, key, "old", b"old bundle" * 100, "b1").status_code == 201
    with running(database_url, tmp_path / "data", blobs=blobs) as recent:
        assert _bundle(recent.url, key, "new", b"new bundle" * 100, "b2").status_code == 201
        [(recent_blob,)] = [
            (row["blob"],) for row in recent.collector.db.rows() if row["session_id"] == "new"
        ]
    assert len(blobs.names()) == 2
    storage = (  # the fixture's SQLite database is DIR/collector.sqlite3, as --data-dir DIR's
        ["--data-dir", str(Path(database_url.removeprefix("sqlite:///")).parent)]
        if database_url.startswith("sqlite")
        else ["--database-url", database_url]
    )
    said = airlock_serve_sweep(*storage, "--blob-url", f"s3://{bucket}/kept")
    assert "1 items past their retention period removed" in said
    assert "feedback_bundle: 1" in said
    assert blobs.names() == [recent_blob]


@pytest.mark.parametrize("url", ["s3://", "http://bucket", "s3:/nope"])
def test_bad_blob_url_named(url: str, tmp_path: Path) -> None:
    """A --blob-url that is not s3://BUCKET is a usage error naming the URL."""
    with pytest.raises(UsageError, match="--blob-url"):
        blob_store(url, tmp_path)


def test_a_stray_object_in_the_bucket_is_removed(bucket: str, tmp_path: Path) -> None:
    """An object no item names goes once older than the margin (its time is the bucket's own),
    and not before; the bundle an item names stays."""
    import boto3

    from airlock.collector.sweeper import STRAY_SECONDS, remove_strays

    blobs = BucketBlobs(f"s3://{bucket}/b")
    with running(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path / "data", blobs=blobs) as served:
        key = served.key("acme")
        assert _bundle(served.url, key, "s", b"named" * 100, "b1").status_code == 201
        [named] = blobs.names()
        boto3.client("s3").put_object(Bucket=bucket, Key="b/" + "0" * 64 + ".tar.gz", Body=b"x")
        boto3.client("s3").put_object(Bucket=bucket, Key="b/someone-elses.txt", Body=b"kept")
        assert remove_strays(served.collector) == 0  # young: its row may be on its way
        later = time.time() + STRAY_SECONDS + 60
        assert remove_strays(served.collector, now=later) == 1
        assert blobs.names() == sorted([named, "someone-elses.txt"])
