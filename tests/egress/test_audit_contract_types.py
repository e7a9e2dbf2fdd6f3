"""The contract's fields of an inspected request's record keep their types when the client
leaves mid-request: ``status`` is an int (``0``: no answer came), never ``null``."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from airlock.egress.audit_read import read_records
from tests.cli import airlock
from tests.egress.harness import inspected_setup, inspected_tls, tls_origin
from tests.egress.origin import _Site, config, running

FIELDS = {
    "time": str,
    "method": str,
    "host": str,
    "port": int,
    "path": str,
    "status": int,
    "flow": str,
    "decision": str,
    "reason": str,
    "bytes_out": int,
    "bytes_in": int,
    "secrets": dict,
}


def _typed(record: dict[str, object]) -> list[str]:
    """The contract's fields of ``record`` that are missing or not of their type."""
    return [
        name
        for name, kind in FIELDS.items()
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool)
    ]


def test_a_request_left_mid_body_is_recorded_with_an_int_status(
    tmp_path: Path, site: _Site
) -> None:
    """Plain HTTP and inspected TLS to an inspected host, each client gone after ten of the
    thousand bytes its Content-Length promised: both records have every field, typed."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    head = "POST /left HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 1000\r\n\r\n"
    with tls_origin(origin_ca, "localhost") as tls_site:
        tls_port, plain_port = tls_site.server_address[1], site.server_address[1]
        with running(cfg) as (url, _):
            plain = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10)
            plain.sendall(
                (
                    f"POST http://localhost:{plain_port}/left HTTP/1.1\r\n"
                    f"Host: localhost:{plain_port}\r\nContent-Length: 1000\r\n\r\n0123456789"
                ).encode()
            )
            time.sleep(0.3)
            plain.close()
            with inspected_tls(url, bundle, tls_port) as tls:
                tls.sendall(head.format(port=tls_port).encode() + b"0123456789")
                time.sleep(0.3)
            time.sleep(0.3)
    assert cfg.audit_log is not None
    left = [r for r in read_records(cfg.audit_log) if r.get("path") == "/left"]
    assert len(left) == 2, left
    for record in left:
        assert record["inspected"] is True and record["error"], record
        assert _typed(record) == [], {k: v for k, v in record.items() if k != "reason"}
        assert record["status"] == 0, record
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "config")}
    done = airlock("audit", "--audit-log", str(cfg.audit_log), "--flow", "unclassified", env=env)
    shown = [line for line in done.stdout.splitlines() if "/left" in line]
    assert len(shown) == 2 and all("status -" in line for line in shown), done.stdout


def test_a_malformed_plain_request_to_an_inspected_host_has_the_inspected_fields(
    tmp_path: Path, site: _Site
) -> None:
    """A plain-HTTP request to an inspected host whose head came whole with a bad chunk size
    after it, in one read, is refused 400 and recorded as every request to an inspected host
    is: its path (query values left out), its flow, the secrets in its path and headers
    (never their values), typed; and counted with its flow in the report, airlock's own
    answer in its bytes as in the record's (it was counted before the answer was added)."""
    key = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
    _, _, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
            sock.sendall(
                (
                    f"POST http://localhost:{port}/api/event_logging/v2/batch?k=v HTTP/1.1\r\n"
                    f"Host: localhost:{port}\r\nX-Key: {key}\r\n"
                    "Transfer-Encoding: chunked\r\n\r\nzz\r\n"
                ).encode()
            )
            answer = b""
            while piece := sock.recv(65536):
                answer += piece
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert cfg.audit_log is not None
    assert key not in cfg.audit_log.read_text()
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert _typed(record) == [], record
    assert (record["inspected"], record["path"], record["flow"]) == (
        True,
        "/api/event_logging/v2/batch?k=…",
        "metrics",
    )
    assert (record["status"], record["decision"], record["secrets"]) == (
        400,
        "deny",
        {"github_token": 1},
    )
    assert "chunk size" in record["reason"]
    assert record["bytes_in"] == len(answer)
    flows = {f.flow: f for f in report.flows}
    metrics = flows["metrics"]
    assert (metrics.refused, metrics.bytes_out, metrics.bytes_in) == (1, 0, len(answer))
