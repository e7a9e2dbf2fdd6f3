"""A plain-HTTP body gathered to be checked (``--secrets redact`` or ``block``, no CONNECT) is
held in memory once, as inside inspected TLS."""

from __future__ import annotations

import socket
import tracemalloc
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA, upstream_context
from airlock.egress.inspect import InspectionConfig
from airlock.egress.scan import SecretsMode
from airlock.policy import decide
from tests.egress.harness import NOW
from tests.egress.origin import config, running
from tests.policy.helpers import context
from tests.serving import Handler, in_thread


class _SinkHandler(Handler):
    """Reads each request's body a piece at a time and drops it (an origin that kept it
    would hold memory of its own in the test's process), then answers ``200``."""

    server: _Sink

    def do_POST(self) -> None:
        left = int(self.headers["Content-Length"])
        while left and (piece := self.rfile.read(min(left, 1 << 16))):
            left -= len(piece)
        self.server.received.append(int(self.headers["Content-Length"]) - left)
        self.answer(200, [("Connection", "close")], b"ok")


class _Sink(ThreadingHTTPServer):
    daemon_threads = True
    received: list[int]


def _inspection(tmp_path: Path, secrets: SecretsMode) -> InspectionConfig:
    run_ca = RunCA(now=NOW)
    pem = tmp_path / "ca.pem"
    pem.write_bytes(run_ca.certificate_pem)
    return InspectionConfig(
        hosts=frozenset({"localhost"}),
        ca=run_ca,
        upstream=upstream_context(pem),
        decisions=decide(context({})),
        secrets=secrets,
        api_hosts=frozenset({"localhost"}),
    )


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_a_gathered_plain_body_is_held_in_memory_once(tmp_path: Path, mode: SecretsMode) -> None:
    """Under ``redact`` and ``block`` a body sent in the clear to an inspected host is
    gathered whole before it leaves, within a budget that counts it once: it is held once
    (not its pieces and their joined copy at once), and it leaves a piece at a time (not
    whole into the transport, which would hold a copy of what the socket did not take at
    once beside it). What Python allocates meanwhile, in all, stays well under twice the
    body."""
    size = 24 << 20
    body = b"".join(b"line %08d of a large upload, plain text\n" % n for n in range(size // 48))
    cfg = config(tmp_path, inspection=_inspection(tmp_path, mode))
    site = _Sink(("127.0.0.1", 0), _SinkHandler)
    site.received = []
    with in_thread(site), running(cfg) as (url, _):
        target = f"http://localhost:{site.server_address[1]}/v1/messages"
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        with socket.create_connection(address, 60) as sock:
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                sock.sendall(
                    f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}"
                    "\r\nConnection: close\r\n\r\n".encode()
                )
                sock.sendall(body)
                answer = b""
                while piece := sock.recv(65536):
                    answer += piece
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert site.received == [len(body)]
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["bytes_out"] > len(body)) == (200, True)
    assert peak < 1.5 * len(body), f"{peak / len(body):.2f} times the body"
