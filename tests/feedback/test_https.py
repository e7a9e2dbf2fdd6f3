"""Uploads over real TLS on loopback: a collector with its own certificate authority."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import ipaddress
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airlock.errors import AirlockError
from airlock.feedback import Retry, upload_bundle
from tests.feedback.servers import collector

FAST = Retry(attempts=2, first_delay=0.01, max_delay=0.02, timeout=10)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate_authority(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for 127.0.0.1; returns the CA file and the server's context."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("airlock test CA"))
        .issuer_name(_name("airlock test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_2
    server.load_cert_chain(chain)
    return ca_file, server


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
