"""The report's count of a flow holds the bytes of airlock's own answer to a malformed
plain-HTTP request to an inspected host, as the request's record does: the request was
counted with its flow before its ``400`` was added to the record, so the flow's ``bytes_in``
in the report was 0 where the log's record said the answer's size (the real proxy on
loopback)."""

from __future__ import annotations

import socket
from pathlib import Path

from airlock.egress.audit_read import read_records
from tests.egress.harness import inspected_setup
from tests.egress.origin import _Site, config, running


def test_a_malformed_request_to_an_inspected_host_counts_its_answer_in_its_flow(
    tmp_path: Path, site: _Site
) -> None:
    _, _, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
            sock.sendall(
                (
                    f"POST http://localhost:{port}/api/event_logging/v2/batch HTTP/1.1\r\n"
                    f"Host: localhost:{port}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                ).encode()
            )
            answer = b""
            while piece := sock.recv(65536):
                answer += piece
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert (record["flow"], record["status"], record["bytes_in"]) == ("metrics", 400, len(answer))
    [metrics] = [f for f in report.flows if f.flow == "metrics"]
    assert (metrics.refused, metrics.bytes_out, metrics.bytes_in) == (1, 0, len(answer))
