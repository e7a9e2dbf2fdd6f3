"""The report's line for an inspected host whose client ended the TLS handshake, from a
walkthrough of ``airlock run``: a client that refused the run's certificate (its alert says
``unknown ca``) is told how to go on; one that failed on its own (curl exit 77, its own
``--cacert`` unreadable: it resets the connection, no alert) is not said to pin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress import ProxyReport
from airlock.egress.scan import SecretsMode
from airlock.policy import decide
from tests.egress.harness import Rig, tls_origin
from tests.egress.test_inspect import _curl
from tests.policy.helpers import context


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """An inspector for localhost in front of a TLS origin there (its own test CA)."""
    made = Rig(tmp_path, decide(context({})), SecretsMode.REPORT, {"localhost"})
    with tls_origin(made.origin_ca, "localhost") as origin:
        made.origin = origin  # type: ignore[attr-defined]
        made.origin_port = origin.server_address[1]  # type: ignore[attr-defined]
        made.front.__enter__()
        try:
            yield made
        finally:
            made.front.__exit__(None, None, None)


def _line(refused: dict[str, str]) -> str:
    report = ProxyReport(
        run_id="run",
        hosts=(),
        final_hash=None,
        audit_log=None,
        refused_by_client=tuple(refused.items()),
    )
    [line] = [line for line in report.flow_lines() if line.startswith("  ! ")]
    return line


def test_a_client_that_refuses_the_certificate_is_told_how_to_go_on(
    rig: Rig, tmp_path: Path
) -> None:
    """curl trusting only the origin's CA: its alert names the unknown CA; the line says to
    leave the host out of --inspect."""
    own = tmp_path / "only-origin.pem"
    own.write_bytes(rig.origin_ca.certificate_pem)
    env = {**rig.proxy_env(), "CURL_CA_BUNDLE": str(own), "SSL_CERT_FILE": str(own)}
    done = _curl(rig, "/v1/messages", env=env)
    assert done.returncode == 60, done.stderr
    [record] = rig.wait_records(1)
    # no request, so no flow of its own; but the fields and kinds of an inspected request's
    # record, so a reader of inspected records finds a flow of the contract's list
    assert record["type"] == "tunnel" and record["inspected"] is True
    assert (record["flow"], record["path"], record["method"]) == ("unclassified", "", "CONNECT")
    line = _line(rig.inspector.refused_by_client)
    assert line.startswith("  ! localhost: the client refused the run's certificate (pinning?): ")
    assert "unknown ca" in line
    assert line.endswith(
        "; leave localhost out of --inspect (its TLS then goes through as a tunnel)"
    )


def test_a_client_that_failed_on_its_own_is_not_said_to_pin(rig: Rig, tmp_path: Path) -> None:
    """curl --cacert naming no file exits 77 before its hello: the proxy sees the connection
    end, no alert; the line says the client ended the handshake, not that it pins."""
    done = _curl(rig, "/v1/messages", "--cacert", str(tmp_path / "missing.pem"))
    assert done.returncode == 77, done.stderr
    rig.wait_records(1)
    line = _line(rig.inspector.refused_by_client)
    assert line.startswith("  ! localhost: the client ended the handshake (")
    assert "pinning" not in line and "certificate" not in line
