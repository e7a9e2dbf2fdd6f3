"""Bundles in an S3-compatible bucket: a real S3 server (moto's) on loopback, started by the test."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airlock.collector.blobs import BucketBlobs, blob_store
from airlock.errors import UsageError
from airlock.policy.collection import OrgTerms
from tests.collector.harness import post_bundle, running


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """``moto_server`` on a free loopback port, for this module."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "moto did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the AWS variables point boto3 at the loopback server."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"bundles-{time.monotonic_ns()}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _bundle(url: str, key: str, session: str, body: bytes, idem: str) -> httpx.Response:
    return post_bundle(url, key, body, idem, session=session)


def test_bundles_in_a_bucket_stored_and_deleted(bucket: str, tmp_path: Path) -> None:
    """A bundle goes to the bucket whole; deleting its session removes the object; ZDR puts none."""
    import boto3

    blobs = BucketBlobs(f"s3://{bucket}/org-data")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    with running(url, tmp_path / "data", blobs=blobs) as served:
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


@pytest.mark.parametrize("url", ["s3://", "http://bucket", "s3:/nope"])
def test_bad_blob_url_named(url: str, tmp_path: Path) -> None:
    """A --blob-url that is not s3://BUCKET is a usage error naming the URL."""
    with pytest.raises(UsageError, match="--blob-url"):
        blob_store(url, tmp_path)
