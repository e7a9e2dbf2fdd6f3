"""Uploads over real TLS on loopback: a collector with its own certificate authority."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import ssl
import time
from pathlib import Path

import httpx
import pytest

from airlock.egress.ca import RunCA
from airlock.errors import AirlockError
from airlock.feedback import Retry, upload_bundle
from tests.feedback.servers import collector

FAST = Retry(attempts=2, first_delay=0.01, max_delay=0.02, timeout=10)


def _certificate_authority(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for 127.0.0.1; returns the CA file and the server's context."""
    ca = RunCA(now=dt.datetime.now(dt.UTC), name="airlock test CA")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.certificate_pem)
    return ca_file, ca.server_context("127.0.0.1")


def _upload(url: str, body: bytes) -> object:
    return upload_bundle(
        io.BytesIO(body),
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        bundle_id="bundle-tls-1",
        collector=url,
        retry=FAST,
        sleep=time.sleep,
    )


def test_upload_over_https_to_a_trusted_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the collector's CA trusted (SSL_CERT_FILE), the bundle is stored whole over TLS."""
    ca_file, server = _certificate_authority(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    body = b"bundle bytes " * 10_000
    with collector(server) as state:
        assert state.url.startswith("https://")
        _upload(state.url, body)
        assert state.stored == {"bundle-tls-1": body}


def test_upload_refuses_an_untrusted_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collector whose certificate is not trusted gets nothing: the TLS check is never skipped."""
    _, server = _certificate_authority(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with collector(server) as state:
        with pytest.raises(AirlockError, match="could not deliver"):
            _upload(state.url, b"secret bundle")
        assert state.stored == {}


def test_https_client_needs_tls_1_2_or_newer() -> None:
    """The HTTP client behind uploads refuses anything older than TLS 1.2."""
    context = httpx.create_ssl_context()
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
