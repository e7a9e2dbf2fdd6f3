"""The audit records one run may write are capped (``Limits.max_log_bytes``): code inside
that floods the proxy with refused requests, each a record with a long path, cannot grow the
log (and fill its disk) without end. Past the cap traffic stops, saying why, and what was
under way is still recorded (the real proxy on loopback, a log in a temp folder)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from airlock.egress import verify
from airlock.egress.audit_read import read_records
from airlock.egress.config import Limits
from tests.egress.origin import _Site, config, exchange, running

CAP = 200_000
PATH = b"/" + b"a" * 10_000
"""A refused request's path: each refusal is a record of about 10 KB."""


def _refused(url: str) -> bytes:
    return exchange(url, b"GET http://evil.test" + PATH + b" HTTP/1.1\r\nHost: evil.test\r\n\r\n")


def test_a_flood_of_refused_requests_stops_traffic_at_the_cap_and_says_why(
    site: _Site, tmp_path: Path
) -> None:
    """Refused requests are recorded until the run's records pass the cap; from then on each
    connection is answered ``503`` naming the cap, counted rather than recorded, so the log
    stays within the cap and a few records. A tunnel open meanwhile is ended, its record
    written; the run's record and the report say why traffic stopped; the log verifies."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=30, max_log_bytes=CAP))
    assert cfg.audit_log is not None and cfg.heads_file is not None
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        tunnel = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10)
        tunnel.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % port)
        assert tunnel.recv(1024).startswith(b"HTTP/1.1 200")
        answers = [_refused(url) for _ in range(40)]  # 400 KB of records without the cap
        tunnel.settimeout(10)
        with contextlib.suppress(ConnectionResetError):  # ended when traffic stopped
            assert tunnel.recv(1024) == b""
        tunnel.close()
        report = proxy.close({"command": ["test"], "exit_code": 0})
    why = "this run's audit records passed their cap of 195.3 KiB"
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 403 ")]
    stopped = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
    assert refused and stopped and len(refused) + len(stopped) == len(answers)
    assert answers.index(stopped[0]) == len(refused)  # once stopped, every one after
    assert all(why.encode() in answer for answer in stopped)
    assert cfg.audit_log.stat().st_size < CAP + 3 * len(PATH) + 10_000
    records = list(read_records(cfg.audit_log))
    requests = [r for r in records if r["type"] == "request"]
    assert len(requests) == len(refused)
    assert all(r["decision"] == "deny" and r["status"] == 403 for r in requests)
    (tunnel_record,) = [r for r in records if r["type"] == "tunnel"]
    assert why in str(tunnel_record["error"])
    run = records[-1]
    assert run["type"] == "run" and why in run["error"]
    assert run["connections_refused"] == [
        {"reason": f"{report.error}: traffic stopped", "count": len(stopped)}
    ]
    assert report.error is not None and report.error.startswith(why)
    assert verify(cfg.audit_log, cfg.heads_file).intact


def test_the_cap_is_in_the_start_record_and_a_run_within_it_goes_on(
    site: _Site, tmp_path: Path
) -> None:
    """The cap is among the limits of the run's ``start`` record; records within it stop
    nothing."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=30, max_log_bytes=CAP))
    assert cfg.audit_log is not None
    with running(cfg) as (url, proxy):
        answers = [_refused(url) for _ in range(5)]
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert all(answer.startswith(b"HTTP/1.1 403 ") for answer in answers)
    assert report.error is None and report.connections_refused == ()
    start = next(iter(read_records(cfg.audit_log)))
    assert start["limits"]["max_log_bytes"] == CAP
