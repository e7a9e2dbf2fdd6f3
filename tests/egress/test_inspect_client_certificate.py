"""An inspected origin that asks for a client certificate: airlock cannot present the
client's (it never has it), so the exchange fails; the ``502`` and the record said only
the TLS alert. They now say why, and what reaches such an origin: leaving it uninspected,
so the client's own TLS (and certificate) reaches it through a tunnel."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA
from tests.egress.harness import inspected_post, inspected_setup
from tests.egress.origin import config, running


@contextlib.contextmanager
def _mutual_tls_origin(ca: RunCA, version: ssl.TLSVersion) -> Iterator[tuple[int, list[str]]]:
    """An origin on 127.0.0.1 that asks for a client certificate signed by ``ca`` and ends
    each handshake that brings none with its alert; what it read of the rest of the
    connection is drained before it closes (closed with bytes unread, its socket would send a
    reset, which can overtake the alert). Its port, and the failures it saw."""
    context = ca.server_context("localhost")
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no certificate, no exchange
    context.load_verify_locations(cadata=ca.certificate_pem.decode())
    context.maximum_version = version
    server = socket.create_server(("127.0.0.1", 0))
    failures: list[str] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                raw, _ = server.accept()
                # the TLS socket takes the connection over: read raw through its socket's own
                # recv once its handshake failed
                with context.wrap_socket(
                    raw, server_side=True, do_handshake_on_connect=False
                ) as tls:
                    try:
                        tls.do_handshake()
                    except (ssl.SSLError, OSError) as error:
                        failures.append(type(error).__name__)
                    tls.settimeout(2)
                    with contextlib.suppress(OSError):
                        while socket.socket.recv(tls, 65536):
                            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], failures
    finally:
        server.close()
        thread.join(5)


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
def test_an_origin_asking_for_a_client_certificate_is_named_so(
    tmp_path: Path, version: ssl.TLSVersion
) -> None:
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    with _mutual_tls_origin(origin_ca, version) as (port, failures), running(cfg) as (url, _):
        answer = inspected_post(url, bundle, port, "/v1/messages")
    assert failures, "the origin saw no handshake"
    assert answer.startswith(b"HTTP/1.1 502"), answer[:300]
    said = answer.partition(b"\r\n\r\n")[2].decode()
    assert "asks for a client certificate" in said, said
    assert "leave localhost uninspected" in said and "--upstream-ca" not in said, said
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["decision"]) == (502, "allow"), record
    assert "asks for a client certificate" in str(record["error"]), record["error"]
