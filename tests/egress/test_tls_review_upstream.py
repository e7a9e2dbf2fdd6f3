"""Upstream TLS of inspected hosts, against real origins on loopback whose certificates are
wrong in each way a server's can be: each is refused before any of the request leaves, and
:func:`~airlock.egress.ca.origin_tls_hint` says why in words that fit (``--upstream-ca`` is
the way out only for a CA not trusted). An origin whose certificate names its host only in
its subject's common name was trusted: it is not, as RFC 9525, browsers and Go read names."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA, origin_tls_hint, upstream_context, write_bundle
from airlock.egress.inspect import InspectionConfig
from airlock.policy import decide
from tests.egress.harness import NOW, inspected_post
from tests.egress.loopback import tls_answering_ok
from tests.egress.origin import config, running
from tests.policy.helpers import context

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _key(bits: int = 0) -> Key:
    return (
        rsa.generate_private_key(65537, bits) if bits else ec.generate_private_key(ec.SECP256R1())
    )


def _certificate(
    subject: str,
    key: Key,
    issuer: tuple[str, Key] | None = None,
    *,
    ca: bool = False,
    names: list[str] | None = None,
    days: tuple[int, int] = (-1, 30),
) -> x509.Certificate:
    """A certificate for ``subject`` (its common name), signed by ``issuer`` (itself when
    none); ``names``: its subject alternative names (an address as such), none when ``None``."""
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if names is not None:
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*parts: x509.Certificate | Key) -> bytes:
    return b"".join(
        part.public_bytes(serialization.Encoding.PEM)
        if isinstance(part, x509.Certificate)
        else part.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for part in parts
    )


ROOT_KEY = _key()
ROOT = _certificate("review root", ROOT_KEY, ca=True)
SIGNED = ("review root", ROOT_KEY)


@contextlib.contextmanager
def _origin(
    tmp: Path, chain: bytes, *, old_tls: bool = False, weak: bool = False
) -> Iterator[tuple[int, list[bytes]]]:
    """A TLS origin on 127.0.0.1 presenting ``chain`` (certificates, then the key): its port,
    and what each connection that got through its handshake sent. ``weak``: it loads a key
    below OpenSSL's default security level; ``old_tls``: it speaks TLS 1.1 and nothing later
    (what OpenSSL still speaks when asked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if weak or old_tls:
        context.set_ciphers("ALL:@SECLEVEL=0")
    if old_tls:
        with warnings.catch_warnings():  # deprecated: the point here
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    files = tmp / "origin-chain.pem"
    files.write_bytes(chain)
    context.load_cert_chain(str(files))
    with tls_answering_ok(context) as served:
        yield served


def _inspecting(tmp: Path, trusted: bytes) -> tuple[Path, InspectionConfig]:
    """The run's bundle and an inspection of ``localhost`` and ``127.0.0.1`` whose origins
    are verified against the system's CAs and ``trusted`` (as ``--upstream-ca``)."""
    run_ca = RunCA(now=NOW)
    upstream = tmp / "upstream-ca.pem"
    upstream.write_bytes(trusted)
    bundle = write_bundle(run_ca, tmp / "bundle.pem", upstream)
    inspection = InspectionConfig(
        hosts=frozenset({"localhost"}),
        ca=run_ca,
        upstream=upstream_context(upstream),
        decisions=decide(context({})),
        api_hosts=frozenset({"localhost"}),
    )
    return bundle, inspection


def test_a_name_only_in_the_common_name_is_not_the_origins(tmp_path: Path) -> None:
    """An origin whose certificate names ``localhost`` only as its common name (no subject
    alternative names), signed by a CA passed with ``--upstream-ca``: the request used to
    reach it. It is answered ``502`` naming the host and why, and nothing of it leaves."""
    key = _key()
    leaf = _certificate("localhost", key, SIGNED, names=None)
    bundle, inspection = _inspecting(tmp_path, _pem(ROOT))
    cfg = config(tmp_path, inspection=inspection)
    with _origin(tmp_path, _pem(leaf, key)) as (port, received), running(cfg) as (url, _):
        answer = inspected_post(url, bundle, port, "/v1/messages")
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:200]
    said = answer.partition(b"\r\n\r\n")[2].decode()
    assert f"origin localhost:{port}" in said and "Hostname mismatch" in said, said
    assert received == []
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["bytes_out"]) == (502, 0), record
    assert "localhost" in record["error"]


def _refused(tmp: Path, host: str, chain: bytes, trusted: bytes, **origin: bool) -> str:
    """Connect to an origin presenting ``chain`` as airlock does (``upstream_context`` with
    ``trusted`` as ``--upstream-ca``, ``host`` as the name): the hint for its error. The
    origin must read nothing."""
    ca_file = tmp / "trusted.pem"
    ca_file.write_bytes(trusted)
    verify = upstream_context(ca_file)
    with (
        _origin(tmp, chain, **origin) as (port, received),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as caught,
        verify.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received == []
    return origin_tls_hint(caught.value, host)


def _leaf(names: list[str] | None, *, bits: int = 0, days: tuple[int, int] = (-1, 30)) -> bytes:
    """A leaf the review root signed for ``names``, with its key (RSA of ``bits`` if given)."""
    key = _key(bits)
    return _pem(_certificate("origin", key, SIGNED, names=names, days=days), key)


OTHER_NAMES = "its certificate is for other names"
NOT_TRUSTED = "pass it with --upstream-ca FILE"


@pytest.mark.parametrize(
    ("host", "names", "said"),
    [
        ("good.example", ["other.example"], OTHER_NAMES),
        ("a.b.example.com", ["*.example.com"], OTHER_NAMES),
        ("example.com", ["*.example.com"], OTHER_NAMES),
        ("127.0.0.1", ["localhost", "127.0.0.2"], "does not list the address 127.0.0.1"),
    ],
    ids=["other-name", "wildcard-two-labels", "wildcard-apex", "address"],
)
def test_a_certificate_for_another_name_is_refused_and_said_so(
    tmp_path: Path, host: str, names: list[str], said: str
) -> None:
    hint = _refused(tmp_path, host, _leaf(names), _pem(ROOT))
    assert said in hint and "--upstream-ca cannot change" in hint, hint


def _spelt_as_the_address(where: str) -> bytes:
    """A leaf naming ``127.0.0.1`` as a DNS name, or as its common name alone."""
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1" if where else "x")])
        )
        .issuer_name(ROOT.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    if where == "dns":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("127.0.0.1")]), critical=False
        )
    return _pem(builder.sign(ROOT_KEY, hashes.SHA256()), key)


@pytest.mark.parametrize("where", ["dns", "common-name"])
def test_an_address_spelt_as_a_name_is_not_the_address(tmp_path: Path, where: str) -> None:
    hint = _refused(tmp_path, "127.0.0.1", _spelt_as_the_address(where), _pem(ROOT))
    assert "does not list the address 127.0.0.1" in hint, hint


@pytest.mark.parametrize(
    ("days", "said"),
    [((-60, -1), "has expired"), ((1, 60), "is not valid yet")],
    ids=["expired", "not-yet-valid"],
)
def test_a_certificate_out_of_its_dates_is_refused_and_said_so(
    tmp_path: Path, days: tuple[int, int], said: str
) -> None:
    hint = _refused(tmp_path, "localhost", _leaf(["localhost"], days=days), _pem(ROOT))
    assert said in hint and "clock is wrong" in hint, hint


def test_a_self_signed_certificate_points_at_upstream_ca(tmp_path: Path) -> None:
    key = _key()
    alone = _certificate("localhost", key, names=["localhost"])
    hint = _refused(tmp_path, "localhost", _pem(alone, key), _pem(ROOT))
    assert NOT_TRUSTED in hint, hint


def test_the_runs_own_ca_is_not_trusted_for_origins(tmp_path: Path) -> None:
    """An origin presenting a leaf of the run's own CA (code inside cannot have one: the key
    stays in airlock; this proves the CA is not among those origins are checked against)."""
    run_ca = RunCA(now=NOW)
    server = run_ca.server_pem("localhost")
    hint = _refused(tmp_path, "localhost", server, _pem(ROOT))
    assert NOT_TRUSTED in hint, hint


def test_a_chain_through_a_certificate_that_is_no_ca_is_refused(tmp_path: Path) -> None:
    middle_key, key = _key(), _key()
    middle = _certificate("not a ca", middle_key, SIGNED, ca=False)
    leaf = _certificate("origin", key, ("not a ca", middle_key), names=["localhost"])
    hint = _refused(tmp_path, "localhost", _pem(leaf, middle, key), _pem(ROOT))
    assert "not valid for a TLS server" in hint, hint


def test_a_weak_key_is_refused_and_said_so(tmp_path: Path) -> None:
    leaf = _leaf(["localhost"], bits=1024)
    hint = _refused(tmp_path, "localhost", leaf, _pem(ROOT), weak=True)
    assert "weaker than airlock accepts" in hint and "RSA under 2048" in hint, hint


def test_an_origin_speaking_only_tls_1_1_is_refused_and_said_so(tmp_path: Path) -> None:
    hint = _refused(tmp_path, "localhost", _leaf(["localhost"]), _pem(ROOT), old_tls=True)
    assert "only TLS older than 1.2" in hint, hint


_H2_ONLY = """
const tls = require('tls');
const [cert, key] = process.argv.slice(1).map(f => require('fs').readFileSync(f));
const server = tls.createServer({cert, key, ALPNProtocols: ['h2']}, s => s.end());
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"""


def test_an_origin_speaking_only_http2_is_refused_and_said_so(tmp_path: Path) -> None:
    """Node's TLS server offering only ``h2`` ends a handshake whose client offers only
    ``http/1.1`` with a ``no_application_protocol`` alert (Go's does too)."""
    key = _key()
    leaf = _certificate("origin", key, SIGNED, names=["localhost"])
    (tmp_path / "leaf.pem").write_bytes(_pem(leaf))
    (tmp_path / "key.pem").write_bytes(_pem(key))
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(_pem(ROOT))
    with subprocess.Popen(
        ["node", "-e", _H2_ONLY, str(tmp_path / "leaf.pem"), str(tmp_path / "key.pem")],
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                pytest.raises(ssl.SSLError) as caught,
            ):
                upstream_context(trusted).wrap_socket(raw, server_hostname="localhost")
        finally:
            server.terminate()
    hint = origin_tls_hint(caught.value, "localhost")
    assert "only HTTP/2" in hint and "out of --inspect" in hint, hint


def test_an_origin_speaking_no_tls_is_said_so(tmp_path: Path) -> None:
    """A port where a server answers in plain HTTP: OpenSSL's ``wrong version number``."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            raw, _ = listener.accept()
            with raw:
                raw.recv(65536)
                raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(_pem(ROOT))
    with (
        listener,
        socket.create_connection(listener.getsockname(), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as caught,
    ):
        upstream_context(trusted).wrap_socket(raw, server_hostname="localhost")
    thread.join(5)
    assert "did not answer in TLS" in origin_tls_hint(caught.value, "localhost")


def test_the_proxys_answer_says_why_an_origins_certificate_is_refused(tmp_path: Path) -> None:
    """Through the real proxy, an origin whose certificate is for another name: the ``502``
    says that ``--upstream-ca`` cannot change that (it told to pass the origin's CA with
    ``--upstream-ca``, whatever was wrong)."""
    key = _key()
    leaf = _certificate("origin", key, SIGNED, names=["other.example"])
    bundle, inspection = _inspecting(tmp_path, _pem(ROOT))
    cfg = config(tmp_path, inspection=inspection)
    with _origin(tmp_path, _pem(leaf, key)) as (port, received), running(cfg) as (url, _):
        answer = inspected_post(url, bundle, port, "/v1/messages")
    said = answer.partition(b"\r\n\r\n")[2].decode()
    assert answer.startswith(b"HTTP/1.1 502 ") and received == [], answer[:300]
    assert OTHER_NAMES in said and NOT_TRUSTED not in said, said
