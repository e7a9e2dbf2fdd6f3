"""The certificate authority of one run: what lets the proxy read TLS to inspected hosts.

Theory of operation
-------------------
:class:`RunCA` makes a fresh CA key and certificate when a run starts. The key stays in this
process's memory: it is never written to a file, and it is gone when the run ends. For each
inspected host the proxy asks :meth:`RunCA.server_context` for a TLS context holding a leaf
certificate for that name, signed by the CA; leaves share one key made with the CA, and each
host's context is made once and cached. ``ssl`` only loads a certificate and key from a path,
so the leaf's PEM is handed over through an anonymous in-memory file (``memfd``), never a file
on disk.

Inside the sandbox, clients trust the CA through a bundle (the system's CAs, the certificates
of the files the user's own CA variables named, and the run's CA certificate: public parts
only) that :func:`write_bundle` writes and :func:`ca_environment` points every usual variable
at. Upstream, the proxy verifies the origin against the system's
CAs plus any ``--upstream-ca`` file (:func:`upstream_context`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from airlock.errors import UsageError

CA_VARIABLES = (
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "PIP_CERT",
    "DENO_CERT",
    "CARGO_HTTP_CAINFO",
    "NPM_CONFIG_CAFILE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "HTTPLIB2_CA_CERTS",
    "NIX_SSL_CERT_FILE",
)
"""Variables through which clients inside the sandbox find the CA bundle (OpenSSL and Python,
Node, requests, curl, git, the AWS SDKs, pip, Deno, cargo, npm, gRPC, gcloud, httplib2, Nix's
builds of OpenSSL and curl): each names one file of PEM certificates, read in place of the
tool's own roots (Node's as extra ones), so the bundle holds the system's CAs too. A value
the user gave one of them (outside, or with ``--env``) is replaced; the certificates of the
file it named are put in the bundle (:func:`user_certificates`)."""

MOST_USER_BUNDLE = 64 << 20
"""The largest file of certificates a CA variable of the user's may name (a system's bundle is
a few hundred KB): past it, the file is said and left out rather than read into memory."""

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n\t ]*?-----END CERTIFICATE-----"
)
"""One PEM certificate block: only these are copied from a user's file (never a key beside
them, nor an OpenSSL ``TRUSTED CERTIFICATE``, which other clients do not read)."""

SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, BSDs
)

LEAF_DAYS = 30
"""How long a leaf is valid; a run is much shorter, and the CA is gone with it."""


class RunCA:
    """A CA made for one run, with its leaf certificates.

    Args:
        now: The time the run starts (certificates are valid from an hour before it).
        name: The CA's common name, shown by clients that refuse it.
    """

    def __init__(self, *, now: dt.datetime, name: str = "airlock run CA") -> None:
        self._now = now
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = self._key.public_key()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=LEAF_DAYS + 1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._leaf_key_pem = self._leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._contexts: dict[str, ssl.SSLContext] = {}

    @property
    def certificate_pem(self) -> bytes:
        """The CA's certificate (public) in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def leaf(self, host: str) -> x509.Certificate:
        """A certificate for ``host`` (a name or an IP address), signed by this CA."""
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt = x509.DNSName(host)
        ca_key = self._key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(hours=1))
            .not_valid_after(self._now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    def server_pem(self, host: str) -> bytes:
        """A leaf for ``host``, this CA's certificate and the leaf's key, in PEM: what a TLS
        server for ``host`` loads (``SSLContext.load_cert_chain``)."""
        leaf = self.leaf(host).public_bytes(serialization.Encoding.PEM)
        return leaf + self.certificate_pem + self._leaf_key_pem

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting a leaf for ``host``; made once per host."""
        context = self._contexts.get(host)
        if context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            _load_from_memory(context, self.server_pem(host))
            self._contexts[host] = context
        return context


def _load_from_memory(context: ssl.SSLContext, pem: bytes) -> None:
    """Load a certificate chain and key from ``pem`` without writing it to a file."""
    fd = os.memfd_create("airlock-leaf", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def system_bundle() -> Path:
    """The system's CA bundle file.

    Raises:
        UsageError: None was found (clients inside would trust nothing but the run's CA).
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, *SYSTEM_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise UsageError(
        "no system CA bundle found (looked at "
        + ", ".join(SYSTEM_BUNDLES)
        + "); install the ca-certificates package"
    )


def write_bundle(ca: RunCA, path: Path, system: Path | None = None, extra: bytes = b"") -> Path:
    """Write the system's CAs, then ``extra`` (the certificates of the user's own CA files,
    :func:`user_certificates`), then the run's CA certificate to ``path`` (mode 0644); return it.

    Only certificates are written, never a key.
    """
    base = (system or system_bundle()).read_bytes()
    if base and not base.endswith(b"\n"):
        base += b"\n"
    path.write_bytes(base + extra + ca.certificate_pem)
    path.chmod(0o644)
    return path


def user_certificates(
    named: Iterable[tuple[str, str]], cwd: Path, system: Path | None = None
) -> tuple[bytes, list[str]]:
    """The certificates of the files the user's own CA variables named, for the run's bundle,
    which those variables name inside in their place: a company's CA trusted through
    ``CURL_CA_BUNDLE=corp.pem`` stays trusted there (a tunnel to a host it signs, not
    inspected, is verified by the client inside).

    ``named``: each value with how it was given (``CURL_CA_BUNDLE``, in airlock's environment;
    ``--env CURL_CA_BUNDLE``); a relative path is read from ``cwd``. Each file
    is read once (the system's bundle, ``system``, not at all: it is in the bundle already), and
    only if it is a regular file of at most :data:`MOST_USER_BUNDLE`; of what it holds only the
    PEM certificate blocks that read as certificates are copied, each written anew from the
    certificate read, so nothing else of the file (a private key beside them) ever is.

    Returns:
        The certificates in PEM, each once; and what to tell the user, a line each, for a
        file that cannot be read or holds no PEM certificate (its value shown, never its
        contents): the run goes on without it.
    """
    from airlock._visible import visible

    try:
        skip = {os.path.realpath(system or system_bundle())}
    except UsageError:  # the bundle is not made without one: said there
        skip = set()
    found: dict[bytes, bytes] = {}
    notes: list[str] = []
    for how, value in named:
        if not value:
            continue
        real = os.path.realpath(cwd / value)
        if real in skip:
            continue
        skip.add(real)
        said = f"{how}={visible(value)}"
        try:
            raw = _read_regular(real, MOST_USER_BUNDLE)
        except OSError as error:
            notes.append(
                f"{said}: cannot be read ({error.strerror or error}), so its certificates are "
                "not in the run's CA bundle, which that variable names inside"
            )
            continue
        certificates = []
        for block in _PEM_CERTIFICATE.findall(raw):
            try:
                certificate = x509.load_pem_x509_certificate(block)
            except ValueError:
                continue
            certificates.append(certificate.public_bytes(serialization.Encoding.PEM))
        if not certificates:
            notes.append(
                f"{said}: holds no PEM certificate (-----BEGIN CERTIFICATE-----), so nothing of "
                "it is in the run's CA bundle, which that variable names inside"
            )
        for pem in certificates:
            found.setdefault(pem, pem)
    return b"".join(found), notes


def _read_regular(path: str, most: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``most`` of them.

    Raises:
        OSError: it cannot be opened or read, or it is no regular file (a FIFO is opened
            without waiting for a writer, and refused) or is larger than ``most``.
    """
    import errno

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > most:
            raise OSError(errno.EFBIG, f"larger than {most >> 20} MiB")
        chunks = []
        left = most
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def ca_environment(bundle: Path | str) -> dict[str, str]:
    """The variables that make clients inside trust the bundle at ``bundle`` (its path inside)."""
    return dict.fromkeys(CA_VARIABLES, str(bundle))


def upstream_context(extra_ca: Path | None = None) -> ssl.SSLContext:
    """The TLS client context for origins: the system's CAs, plus ``extra_ca`` when given.

    Raises:
        UsageError: ``extra_ca`` cannot be read or holds no certificate.
    """
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    if extra_ca is not None:
        try:
            context.load_verify_locations(cafile=str(extra_ca))
        except (OSError, ssl.SSLError) as error:
            raise UsageError(
                f"--upstream-ca {extra_ca}: cannot load it as PEM certificates ({error}); "
                "give a file of one or more PEM certificates"
            ) from error
    return context
