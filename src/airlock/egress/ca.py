"""The certificate authority of one run: what lets the proxy read TLS to inspected hosts.

Theory of operation
-------------------
:class:`RunCA` makes a fresh CA key and certificate when a run starts. The key stays in this
process's memory: it is never written to a file, and it is gone when the run ends. For each
inspected host the proxy asks :meth:`RunCA.server_context` for a TLS context holding a leaf
certificate for that name, signed by the CA; leaves share one key made with the CA, and each
host's context is made once and cached. ``ssl`` only loads a certificate and key from a path,
so the leaf's PEM is handed over through an anonymous in-memory file (``memfd``), never a file
on disk. Given the run's inspected hosts, the CA is name-constrained to them (RFC 5280
4.2.1.10; the clients of OpenSSL, Node's included, and GnuTLS are tested to honour it): even its
key, were it ever read out of this process, would sign for no other name, and a copy of its
certificate taken out of the sandbox vouches for no other site. A tunnel's own context (:meth:`RunCA.tunnel_context`)
notes a client that asks (SNI) for another name than the host its ``CONNECT`` named, so that
its failed handshake is told as such (:class:`OtherName`), not as certificate pinning.

Inside the sandbox, clients trust the CA through a bundle (the system's CAs, the certificates
of the files the user's own CA variables named, and the run's CA certificate: public parts
only) that :func:`write_bundle` writes and :func:`ca_environment` points every usual variable
at. Upstream, the proxy verifies the origin against the system's
CAs plus any ``--upstream-ca`` file (:func:`upstream_context`), its name read only from the
certificate's subject alternative names; :func:`origin_tls_hint` says in words why an origin's
TLS failed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from airlock.errors import HostError, UsageError
from airlock.policy.hosts import normalize_host, parse_host

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

MAX_COMMON_NAME = 64
"""The longest common name X.509 allows (``ub-common-name``): a leaf for a longer host name
has no subject, its name in its subject alternative names only."""

NO_NAME = "invalid"
"""The only DNS name (and its subdomains) a CA made for addresses alone may sign for: the
reserved top-level domain no public name is under (RFC 6761 6.4)."""


class RunCA:
    """A CA made for one run, with its leaf certificates.

    Args:
        now: The time the run starts (certificates are valid from an hour before it).
        name: The CA's common name, shown by clients that refuse it.
        hosts: The hosts the run inspects: the CA may sign for those alone (its name
            constraints, :func:`name_constraints`). ``None``: for any name (a test origin's CA).
    """

    def __init__(
        self,
        *,
        now: dt.datetime,
        name: str = "airlock run CA",
        hosts: Iterable[str] | None = None,
    ) -> None:
        self._now = now
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = self._key.public_key()
        builder = (
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
        )
        if hosts is not None:  # critical, as RFC 5280 asks: a client that cannot read it refuses
            builder = builder.add_extension(name_constraints(hosts), critical=True)
        self.certificate = builder.sign(self._key, hashes.SHA256())
        self._leaf_key_pem = self._leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._tunnel_contexts: dict[str, ssl.SSLContext] = {}

    @property
    def certificate_pem(self) -> bytes:
        """The CA's certificate (public) in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def leaf(self, host: str) -> x509.Certificate:
        """A certificate for ``host`` (a name or an IP address), signed by this CA.

        Its name is in its subject alternative names. A host name of at most
        :data:`MAX_COMMON_NAME` characters is its subject's common name too; an address is not:
        a name-constrained CA's clients (OpenSSL, GnuTLS) read a common name that looks like a
        host name (``127.0.0.2`` does) as a DNS name when the leaf has none, and refuse it as
        outside the CA's DNS names. A leaf without a subject marks its alternative names
        critical (RFC 5280 4.2.1.6).
        """
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
            subject = x509.Name([])
        except ValueError:
            alt = x509.DNSName(host)
            subject = x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, host)]
                if len(host) <= MAX_COMMON_NAME
                else []
            )
        ca_key = self._key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(hours=1))
            .not_valid_after(self._now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName([alt]), critical=not subject)
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
            context = self._contexts[host] = self._new_server_context(host)
        return context

    def tunnel_context(self, host: str) -> ssl.SSLContext:
        """The context an inspected tunnel to ``host`` is served with (made once per host):
        :meth:`server_context`'s leaf, and a client that asks (SNI) for another name, then
        fails its handshake, failing with :class:`OtherName`, which names what it asked for.

        Such a client is not refused here: its requests go to ``host`` whatever it asked for
        (airlock names ``host`` to the origin, and a ``Host`` header naming another is
        refused), and one that verifies refuses the leaf for ``host`` itself, with its own
        words (refused here, it would see only the connection close: asyncio sends no alert
        of a handshake it fails).
        """
        context = self._tunnel_contexts.get(host)
        if context is None:
            context = self._new_server_context(host)
            context.sni_callback = _note_other_name(normalize_host(host))
            context.sslobject_class = _TunnelSide
            self._tunnel_contexts[host] = context
        return context

    def _new_server_context(self, host: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        _load_from_memory(context, self.server_pem(host))
        return context


def name_constraints(hosts: Iterable[str]) -> x509.NameConstraints:
    """The names a run's CA may sign for: each DNS name of ``hosts``, with its subdomains (as
    a DNS name constraint always reads), or only :data:`NO_NAME` when none is a name; and no
    address, when none of ``hosts`` is one.

    A constraint binds only the kinds of name it lists, so addresses are excluded outright
    when none is inspected (as the CA/Browser Forum's rules ask of a CA that may sign for
    none). When one is, addresses are left unbound: the reference agent's own TLS client
    refuses a leaf for an address that a permitted address of its CA covers (tried with
    ``--inspect 127.0.0.2``: its handshake reset), while OpenSSL, Node and GnuTLS take it.
    A value that is no host (refused before a run starts) is left out.
    """
    names: dict[x509.GeneralName, None] = {}
    addresses = False
    for host in hosts:
        try:
            canonical = parse_host(host).text
        except HostError:
            continue
        try:
            ipaddress.ip_address(canonical)
        except ValueError:
            names[x509.DNSName(canonical)] = None
        else:
            addresses = True
    permitted = list(names) or [x509.DNSName(NO_NAME)]
    excluded: list[x509.GeneralName] | None = None
    if not addresses:
        excluded = [
            x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
            x509.IPAddress(ipaddress.ip_network("::/0")),
        ]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded)


class OtherName(ssl.SSLError):
    """The client of an inspected tunnel asked (SNI) for another name than the tunnel's host,
    and its handshake failed (:meth:`RunCA.tunnel_context`): a client that verifies refuses a
    certificate for the host when it asked for another name.

    Attributes:
        asked: The name it asked for, as records show it (escaped, cut past 253 characters).
        host: The tunnel's host.
        why: The handshake's own error.
    """

    def __init__(self, asked: str, host: str, why: str) -> None:
        self.asked = asked
        self.host = host
        self.why = why
        super().__init__(
            ssl.SSL_ERROR_SSL,
            f"it asked for {asked} in its TLS (SNI) inside a tunnel to {host}, whose "
            f"certificate is for {host}: CONNECT to {asked} itself to reach it",
        )


class _TunnelSide(ssl.SSLObject):
    """The server side of an inspected tunnel's TLS: a handshake that fails after the client
    asked for another name fails with :class:`OtherName`."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as error:
            asked: tuple[str, str] | None = self.__dict__.get("airlock_asked")
            if asked is not None:
                name, host = asked
                raise OtherName(name, host, str(error) or type(error).__name__) from error
            raise


def _note_other_name(host: str) -> Callable[[Any, str | None, ssl.SSLContext], int | None]:
    """The ``sni_callback`` of :meth:`RunCA.tunnel_context`: a name other than ``host``
    (canonical: ``LOCALHOST.`` is ``localhost``, an IDN's U-label its A-label) is kept on the
    connection's TLS object, shown as records show names; the handshake goes on."""
    from airlock._visible import visible
    from airlock.egress.rules import shown_host

    def note(tls: Any, name: str | None, _context: ssl.SSLContext) -> None:
        if name is not None and normalize_host(name) != host:
            tls.airlock_asked = (visible(shown_host(name)), host)

    return note


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
    # The origin's name is read from its certificate's subject alternative names alone, as
    # RFC 9525, browsers and Go read it: not from a subject's common name when it has none.
    context.hostname_checks_common_name = False
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


_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
"""OpenSSL's verify codes for a chain that ends at no CA trusted: no issuer found (locally or
at all), a self-signed certificate alone or in the chain, a leaf whose signature has no issuer
to check it by."""
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH, _ADDRESS_MISMATCH = 62, 64
_WEAK = frozenset({66, 67, 68})
"""A key too small (the leaf's, a CA's) or a signature's digest too weak, below OpenSSL's
security level 2, which Python's default contexts ask for."""


def origin_tls_hint(error: BaseException, host: str) -> str:
    """What to add, in words, to the TLS ``error`` of a connection to the origin ``host`` (a
    message that names it already): why its certificate does not verify, and whether
    ``--upstream-ca`` can help (only for a CA not trusted: the system's and that file's are,
    never the run's own), or that it speaks no TLS, or no TLS version or protocol airlock does;
    ``""`` for another error. Short, first what to do: the report shows a failure's first 300
    characters, OpenSSL's own words included.

    OpenSSL's words name the check (``Hostname mismatch``), not what it means here:
    ``--upstream-ca`` changes nothing for a certificate for another name.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code in _UNTRUSTED:
            return "; if the origin uses its own CA, pass it with --upstream-ca FILE"
        if code == _NAME_MISMATCH:
            return (
                "; its certificate is for other names, which --upstream-ca cannot change (a "
                "wildcard covers one label; a name only in the subject's CN is not read)"
            )
        if code == _ADDRESS_MISMATCH:
            return (
                f"; its certificate does not list the address {host}, which --upstream-ca "
                "cannot change (a DNS name or CN spelling it does not count)"
            )
        if code in (_EXPIRED, _NOT_YET_VALID):
            when = "has expired" if code == _EXPIRED else "is not valid yet"
            return f"; a certificate of its chain {when} (or this machine's clock is wrong)"
        if code in _WEAK:
            return (
                "; its chain is weaker than airlock accepts (RSA under 2048 bits, EC under "
                "224, a SHA-1 signature): the origin must renew it"
            )
        return "; its certificate chain is not valid for a TLS server: the origin must fix it"
    if not isinstance(error, ssl.SSLError):
        return ""
    said = f"{error.reason or ''} {error}".lower()
    if "wrong version number" in said:
        return "; it did not answer in TLS (plain HTTP on that port?): inspected hosts take TLS"
    if "protocol version" in said or "unsupported protocol" in said:
        return "; it speaks only TLS older than 1.2, which airlock refuses"
    if "no application protocol" in said:
        return (
            "; it speaks only HTTP/2 (ALPN), and airlock HTTP/1.1 inside inspected TLS: "
            f"leave {host} out of --inspect to tunnel it unread"
        )
    return ""
