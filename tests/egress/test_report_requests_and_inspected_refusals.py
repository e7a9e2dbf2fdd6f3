"""The end-of-run report's per-host ``requests`` and ``refused`` are the audit log's, whichever
path a request took (plain HTTP, inspected TLS): a real proxy on loopback, a real origin with
its own CA, real records. A refused inspected request was counted among the host's requests
(``localhost: 0 conn, 1 req … refused 1``) while a refused plain one was not; an inspected
request airlock refused at the origin's dial (a limit) was recorded allowed, failed, 502."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from airlock.egress import Limits
from airlock.egress.audit_read import read_records
from airlock.egress.report import NO_HOST
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, exchange, origin, running


def _closed_port() -> int:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


def _records(log: Path) -> list[dict[str, Any]]:
    return [r for r in read_records(log) if r["type"] in ("request", "tunnel")]


def test_requests_are_the_allowed_request_records_that_went_out(tmp_path: Path) -> None:
    """Per host, ``requests`` is the number of its request records allowed that did not fail
    before any of them left (an error, no bytes out), as the flows count ``sent``: an inspected
    request refused by its flow, or failing to reach its origin, is not one, as a plain
    request refused by a rule or failing to reach its destination is not."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    down = _closed_port()
    with tls_origin(origin_ca, "localhost") as site, origin() as plain:
        port, plain_port = site.server_address[1], plain.server_address[1]
        with running(cfg) as (url, proxy):
            sent = inspected_post(url, bundle, port, "/v1/messages")
            metrics = inspected_post(url, bundle, port, "/api/event_logging/v2/batch")
            unreached = inspected_post(url, bundle, down, "/v1/messages")
            for host in (f"127.0.0.1:{plain_port}", f"127.0.0.1:{down}", "evil.test"):
                exchange(
                    url,
                    f"GET http://{host}/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
                )
            report = proxy.close({"command": ["test"], "exit_code": 0})
    assert sent.startswith(b"HTTP/1.1 200"), sent[:100]
    assert metrics.startswith(b"HTTP/1.1 403") and unreached.startswith(b"HTTP/1.1 502")
    records = _records(cfg.audit_log)
    hosts = {host.host: host for host in report.hosts}
    for name in {r["host"] or NO_HOST for r in records}:
        went = [
            r for r in records
            if (r["host"] or NO_HOST) == name and r["type"] == "request"
            and r["decision"] == "allow" and not (r["error"] and not r["bytes_out"])
        ]  # fmt: skip
        assert hosts[name].requests == len(went), (name, hosts[name])
    assert (hosts["localhost"].requests, hosts["127.0.0.1"].requests) == (1, 1)
    assert [flow.allowed for flow in report.flows if flow.flow == "model_requests"] == [1]


def test_an_inspected_request_refused_by_a_limit_is_a_refusal(tmp_path: Path) -> None:
    """``--new-connections-per-second 1``: an inspected request whose origin connection the
    limit refuses is answered ``429`` and recorded ``deny``, as a plain request's is, so the
    report counts it refused (``airlock audit --decision deny`` lists it) and not failed."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    limits = Limits(idle_seconds=30, new_connections_per_second=1)
    cfg = config(tmp_path, inspection=inspection, limits=limits)
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, proxy):
            first = inspected_post(url, bundle, port, "/v1/messages")
            second = inspected_post(url, bundle, port, "/v1/messages")  # a new connection
            report = proxy.close({"command": ["test"], "exit_code": 0})
    assert first.startswith(b"HTTP/1.1 200"), first[:100]
    assert second.startswith(b"HTTP/1.1 429"), second[:200]
    [_, refused] = _records(cfg.audit_log)
    assert (refused["decision"], refused["status"]) == ("deny", 429), refused
    [host] = report.hosts
    assert (report.refused, report.errors, host.requests) == (1, 0, 1), host


def test_a_malformed_body_read_with_its_head_is_its_hosts_refusal(tmp_path: Path) -> None:
    """A chunked request whose first chunk size is not hex, sent in one write with its head:
    its host was read, so its refusal is that host's (the record named none, and the report
    counted it under ``(no host)``, which the README keeps for requests refused before a host
    was read)."""
    cfg = config(tmp_path)
    with origin() as site:
        host = f"127.0.0.1:{site.server_address[1]}"
        with running(cfg) as (url, proxy):
            answer = exchange(
                url,
                f"POST http://{host}/m HTTP/1.1\r\nHost: {host}\r\n"
                "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".encode(),
            )
            report = proxy.close({"command": ["test"], "exit_code": 0})
        assert site.seen == []
    assert answer.startswith(b"HTTP/1.1 400"), answer
    [record] = _records(cfg.audit_log)
    assert (record["host"], record["decision"], record["method"]) == ("127.0.0.1", "deny", "POST")
    assert [(h.host, sum(n for _, n in h.refused)) for h in report.hosts] == [("127.0.0.1", 1)]
