"""The run's CA, name-constrained to the hosts it inspects: its leaves for those hosts (names
and addresses) are trusted by Python, curl, Node (OpenSSL) and wget (GnuTLS); a certificate
it signed for any other name, or for an address when the run inspects none, is refused by
each. Without the constraint, its key (were it ever read out of airlock's memory) or its
certificate (copied out of the sandbox and trusted elsewhere) vouched for every site there
is. (An inspected address leaves addresses unbound: ``airlock.egress.ca.name_constraints``.)"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from airlock.egress.ca import NO_NAME, RunCA
from tests.egress.harness import NOW
from tests.egress.loopback import tls_answering_ok

HOSTS = ("LOCALHOST.", "good.example", "127.0.0.2", "::1")
"""What the run inspects (``LOCALHOST.`` is ``localhost`` as the rules read it)."""
NAMES = ("LOCALHOST.", "good.example")
"""What a run that inspects no address inspects."""


@contextlib.contextmanager
def _serving(context: ssl.SSLContext, bind: str) -> Iterator[int]:
    """A TLS server on ``bind`` answering each request with ``ok``; its port."""
    with tls_answering_ok(context, bind) as (port, _):
        yield port


def _url(name: str, port: int) -> str:
    return f"https://[{name}]:{port}/" if ":" in name else f"https://{name}:{port}/"


def _python(name: str, bind: str, port: int, cafile: Path) -> str:
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with (
            socket.create_connection((bind, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name),
        ):
            return "ok"
    except ssl.SSLError as error:
        return str(error)


def _curl(name: str, bind: str, port: int, cafile: Path) -> str:
    target = f"[{bind}]" if ":" in bind else bind
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", str(cafile), "--noproxy", "*"]
        + ([] if name == bind else ["--resolve", f"{name}:{port}:{target}"])
        + [_url(name, port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return "ok" if done.returncode == 0 and done.stdout == "ok" else done.stderr


_NODE = """
const tls = require('tls'), fs = require('fs'), net = require('net');
const [bind, port, name, ca] = process.argv.slice(1);
const s = tls.connect({host: bind, port: +port, ca: fs.readFileSync(ca),
  servername: net.isIP(name) ? undefined : name,
  checkServerIdentity: (_, cert) => tls.checkServerIdentity(name, cert)},
  () => { process.stdout.write('ok'); s.end(); });
s.on('error', e => process.stdout.write(e.message));
"""


def _node(name: str, bind: str, port: int, cafile: Path) -> str:
    done = subprocess.run(
        ["node", "-e", _NODE, bind, str(port), name, str(cafile)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout or done.stderr


def _wget(name: str, port: int, cafile: Path) -> str:
    """wget, built with GnuTLS here: another library's reading of name constraints (``name``
    resolves to where the server listens)."""
    done = subprocess.run(
        [
            *("wget", "-q", "-O-", "--timeout=10", "--tries=1", "--no-proxy"),
            *(f"--ca-certificate={cafile}", _url(name, port)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return "ok" if done.returncode == 0 and done.stdout == "ok" else f"wget {done.returncode}"


CLIENTS = {"python": _python, "curl": _curl, "node": _node}


def _constrained(tmp_path: Path, hosts: tuple[str, ...]) -> tuple[RunCA, Path]:
    ca = RunCA(now=NOW, hosts=hosts)
    cafile = tmp_path / f"ca-{len(hosts)}.pem"  # one file for each fixture
    cafile.write_bytes(ca.certificate_pem)
    return ca, cafile


@pytest.fixture
def constrained(tmp_path: Path) -> tuple[RunCA, Path]:
    return _constrained(tmp_path, HOSTS)


@pytest.fixture
def names_only(tmp_path: Path) -> tuple[RunCA, Path]:
    return _constrained(tmp_path, NAMES)


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize(
    ("name", "bind"),
    [
        ("localhost", "127.0.0.1"),
        ("good.example", "127.0.0.1"),
        ("127.0.0.2", "127.0.0.2"),
        ("::1", "::1"),
    ],
)
def test_a_leaf_for_an_inspected_host_is_trusted(
    constrained: tuple[RunCA, Path], client: str, name: str, bind: str
) -> None:
    ca, cafile = constrained
    with _serving(ca.server_context(name), bind) as port:
        assert CLIENTS[client](name, bind, port, cafile) == "ok"


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize(
    ("name", "bind", "ca_of"),
    [
        ("evil.example", "127.0.0.1", "constrained"),
        ("localhost.evil.example", "127.0.0.1", "constrained"),
        ("127.0.0.3", "127.0.0.3", "names_only"),
    ],
)
def test_a_certificate_it_signed_for_another_host_is_refused(
    request: pytest.FixtureRequest, client: str, name: str, bind: str, ca_of: str
) -> None:
    """A leaf the CA's key signed for a host the run does not inspect (an address, where it
    inspects none): refused by every client as outside the CA's names (it verifies against a
    CA without the constraint)."""
    ca, cafile = request.getfixturevalue(ca_of)
    with _serving(ca.server_context(name), bind) as port:
        said = CLIENTS[client](name, bind, port, cafile)
    assert said != "ok"
    assert "subtree violation" in said or client == "node", said  # Node: "Unspecified"


def test_gnutls_reads_the_constraint_too(
    constrained: tuple[RunCA, Path], names_only: tuple[RunCA, Path]
) -> None:
    """wget (GnuTLS) takes the run's leaf for ``localhost`` and for ``127.0.0.2`` (an
    address's leaf has no common name: GnuTLS and OpenSSL would read one that looks like a
    host name as a DNS name, outside the CA's), and refuses one for ``127.0.0.3`` from a CA of
    a run that inspects no address."""
    said = {}
    for name, (ca, cafile) in (
        ("localhost", constrained),
        ("127.0.0.2", constrained),
        ("127.0.0.3", names_only),
    ):
        bind = name if name.startswith("127.") else "127.0.0.1"
        with _serving(ca.server_context(name), bind) as port:
            said[name] = _wget(name, port, cafile)
    assert said["localhost"] == "ok" and said["127.0.0.2"] == "ok", said
    assert said["127.0.0.3"] != "ok", said


def test_the_constraint_names_each_host_and_binds_both_kinds_of_name() -> None:
    """Critical, as RFC 5280 asks; names as the rules read them; with no address inspected,
    every address excluded; with no name inspected, only the reserved ``invalid``."""
    names = RunCA(now=NOW, hosts=["API.Example.com.", "bücher.example"]).certificate
    constraint = names.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraint.critical
    assert {n.value for n in constraint.value.permitted_subtrees or ()} == {
        "api.example.com",
        "xn--bcher-kva.example",
    }
    assert {str(n.value) for n in constraint.value.excluded_subtrees or ()} == {
        "0.0.0.0/0",
        "::/0",
    }
    addresses = RunCA(now=NOW, hosts=["127.0.0.2"]).certificate
    value = addresses.extensions.get_extension_for_class(x509.NameConstraints).value
    assert {str(n.value) for n in value.permitted_subtrees or ()} == {NO_NAME}
    assert value.excluded_subtrees is None  # an inspected address: addresses left unbound
