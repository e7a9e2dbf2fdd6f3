"""The run's CA: leaves clients trust through the bundle, a key that never reaches a file."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.ca import CA_VARIABLES, RunCA, ca_environment, upstream_context, write_bundle
from airlock.errors import UsageError

NOW = dt.datetime.now(dt.UTC)


def _serve_once(context: ssl.SSLContext) -> tuple[int, threading.Thread, list[str]]:
    """A TLS server on loopback that answers one HTTP request with 'hello'."""
    listener = socket.create_server(("127.0.0.1", 0))
    errors: list[str] = []

    def run() -> None:
        with listener:
            listener.settimeout(10)
            raw, _ = listener.accept()
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
                    )
            except (ssl.SSLError, OSError) as error:
                errors.append(str(error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, errors


@pytest.fixture
def ca() -> RunCA:
    return RunCA(now=NOW)


@pytest.fixture
def bundle(ca: RunCA, tmp_path: Path) -> Iterator[Path]:
    other = RunCA(now=NOW, name="some system CA")
    system = tmp_path / "system.pem"
    system.write_bytes(other.certificate_pem)
    yield write_bundle(ca, tmp_path / "bundle.pem", system)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"], ids=["name", "ip"])
def test_python_client_trusts_a_leaf_through_the_bundle(ca: RunCA, bundle: Path, host: str) -> None:
    """A client verifying against the bundle accepts the leaf for the host it asked for."""
    port, thread, errors = _serve_once(ca.server_context(host))
    client = ssl.create_default_context(cafile=str(bundle))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert tls.recv(1024).endswith(b"hello")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")
    thread.join(10)
    assert errors == []


def test_leaf_for_another_host_is_refused(ca: RunCA, bundle: Path) -> None:
    """A leaf made for one host does not pass for another."""
    port, thread, _ = _serve_once(ca.server_context("a.example"))
    client = ssl.create_default_context(cafile=str(bundle))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.wrap_socket(raw, server_hostname="b.example")
    thread.join(10)


def test_curl_trusts_the_bundle_from_its_variable(ca: RunCA, bundle: Path) -> None:
    """curl, told only CURL_CA_BUNDLE (as inside the sandbox), fetches over the run's leaf."""
    port, thread, _ = _serve_once(ca.server_context("localhost"))
    env = {"PATH": "/usr/bin:/bin", **ca_environment(bundle)}
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", f"https://localhost:{port}/"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    thread.join(10)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello"


def test_node_trusts_the_bundle_from_its_variable(ca: RunCA, bundle: Path) -> None:
    """Node, told only NODE_EXTRA_CA_CERTS, fetches over the run's leaf."""
    port, thread, _ = _serve_once(ca.server_context("localhost"))
    script = (
        "require('https').get('https://localhost:" + str(port) + "/', r => {"
        "let b=''; r.on('data', d => b += d); r.on('end', () => process.stdout.write(b)); })"
        ".on('error', e => { console.error(e.message); process.exit(1); });"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "NODE_EXTRA_CA_CERTS": ca_environment(bundle)["NODE_EXTRA_CA_CERTS"],
    }
    done = subprocess.run(
        ["node", "-e", script], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    thread.join(10)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello"


def test_bundle_holds_certificates_only(ca: RunCA, bundle: Path, tmp_path: Path) -> None:
    """The bundle keeps the system's CAs, adds the run's, and no file holds a private key."""
    text = bundle.read_bytes()
    assert text.count(b"BEGIN CERTIFICATE") == 2
    assert text.endswith(ca.certificate_pem)
    ca.server_context("localhost")
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert b"PRIVATE KEY" not in path.read_bytes()


def test_server_context_is_cached_per_host(ca: RunCA) -> None:
    """A host's leaf is made once; another host gets its own."""
    assert ca.server_context("a.example") is ca.server_context("a.example")
    assert ca.server_context("a.example") is not ca.server_context("b.example")


def test_every_variable_points_at_the_bundle() -> None:
    """Each CA variable clients read is set to the bundle's path inside."""
    env = ca_environment("/run/airlock/ca.pem")
    assert set(env) == set(CA_VARIABLES)
    assert set(env.values()) == {"/run/airlock/ca.pem"}


def test_upstream_verified_against_extra_ca(tmp_path: Path) -> None:
    """An origin signed by --upstream-ca's CA passes; without that file it is refused."""
    origin = RunCA(now=NOW, name="test origin CA")
    extra = tmp_path / "origin-ca.pem"
    extra.write_bytes(origin.certificate_pem)
    for trusted in (True, False):
        port, thread, _ = _serve_once(origin.server_context("localhost"))
        context = upstream_context(extra if trusted else None)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            if trusted:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert tls.recv(1024).endswith(b"hello")
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    context.wrap_socket(raw, server_hostname="localhost")
        thread.join(10)


def test_unreadable_upstream_ca_names_the_file(tmp_path: Path) -> None:
    """A --upstream-ca file that is not PEM is an error naming the option and the file."""
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(UsageError, match=r"--upstream-ca .*bad\.pem"):
        upstream_context(bad)
