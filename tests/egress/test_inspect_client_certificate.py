"""An inspected origin that asks for a client certificate: airlock cannot present the
client's (it never has it), so the exchange fails; the ``502`` and the record said only
the TLS alert. They now say why, and what reaches such an origin: leaving it uninspected,
so the client's own TLS (and certificate) reaches it through a tunnel."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from airlock.egress.audit import read_records
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, running


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
def test_an_origin_asking_for_a_client_certificate_is_named_so(
    tmp_path: Path, version: ssl.TLSVersion
) -> None:
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    context = origin_ca.server_context("localhost")
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no certificate, no exchange
    context.load_verify_locations(cadata=origin_ca.certificate_pem.decode())
    context.maximum_version = version
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, _):
            answer = inspected_post(url, bundle, port, "/v1/messages")
        seen = list(site.seen)
    assert answer.startswith(b"HTTP/1.1 502"), answer[:300]
    said = answer.partition(b"\r\n\r\n")[2].decode()
    assert "asks for a client certificate" in said, said
    assert "leave localhost uninspected" in said and "--upstream-ca" not in said, said
    assert seen == []
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["decision"]) == (502, "allow"), record
    assert "asks for a client certificate" in str(record["error"]), record["error"]
