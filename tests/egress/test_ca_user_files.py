"""The certificates of the files the user's own CA variables named, for the run's CA bundle
(:func:`airlock.egress.ca.user_certificates`): only certificates are copied, each file read
once and only if it is a regular file; what cannot be used is said, never fatal."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airlock.egress.ca import RunCA, user_certificates, write_bundle
from tests.egress.harness import NOW


def _key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def test_only_certificates_are_taken_and_each_once(tmp_path: Path) -> None:
    """A file of a key, a company's CA and a block that is no certificate, named by two
    variables (one relative), and a second CA in another file: both CAs, once each, written
    anew; no key, nothing else of the files."""
    corp, other = RunCA(now=NOW, name="corp CA"), RunCA(now=NOW, name="other CA")
    junk = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    (tmp_path / "corp.pem").write_bytes(b"# corp\n" + _key_pem() + junk + corp.certificate_pem)
    (tmp_path / "other.pem").write_bytes(other.certificate_pem + corp.certificate_pem)
    system = tmp_path / "system.pem"
    system.write_bytes(RunCA(now=NOW, name="system CA").certificate_pem)
    named = [
        ("CURL_CA_BUNDLE", str(tmp_path / "corp.pem")),
        ("--env REQUESTS_CA_BUNDLE", "corp.pem"),
        ("SSL_CERT_FILE", str(system)),  # the system's bundle: in the run's already
        ("NODE_EXTRA_CA_CERTS", "other.pem"),
    ]
    found, notes = user_certificates(named, tmp_path, system)
    assert notes == []
    assert b"PRIVATE KEY" not in found and b"# corp" not in found
    names = [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(found)]
    assert names == ["CN=corp CA", "CN=other CA"]
    bundle = write_bundle(RunCA(now=NOW), tmp_path / "bundle.pem", system, extra=found)
    held = [
        c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(bundle.read_bytes())
    ]
    assert held == ["CN=system CA", "CN=corp CA", "CN=other CA", "CN=airlock run CA"]


def test_what_cannot_be_used_is_said(tmp_path: Path) -> None:
    """A missing file, a folder, a FIFO (not waited on: no writer ever comes), a file of DER
    and an empty value: each said by its variable and value (an empty one is no file), and
    nothing of them taken; what the files hold is never said."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    der = tmp_path / "corp.der"
    der.write_bytes(RunCA(now=NOW).certificate.public_bytes(serialization.Encoding.DER))
    named = [
        ("CURL_CA_BUNDLE", "missing.pem"),
        ("--env GIT_SSL_CAINFO", str(tmp_path)),
        ("SSL_CERT_FILE", str(fifo)),
        ("PIP_CERT", str(der)),
        ("AWS_CA_BUNDLE", ""),
    ]
    result: list[tuple[bytes, list[str]]] = []
    reader = threading.Thread(target=lambda: result.append(user_certificates(named, tmp_path)))
    reader.start()
    reader.join(10)
    assert result, "a FIFO was waited on"
    found, notes = result[0]
    assert found == b""
    assert [note.split(":", 1)[0] for note in notes] == [
        "CURL_CA_BUNDLE=missing.pem",
        f"--env GIT_SSL_CAINFO={tmp_path}",
        f"SSL_CERT_FILE={fifo}",
        f"PIP_CERT={der}",
    ]
    assert "cannot be read (No such file or directory)" in notes[0]
    assert "not a regular file" in notes[1] and "not a regular file" in notes[2]
    assert "holds no PEM certificate" in notes[3]
