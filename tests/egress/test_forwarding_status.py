"""A plain request's record keeps the status its client was sent when the client leaves
mid-answer (a destination that cuts its answer short is recorded as failed, ``502``)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from airlock.egress.audit_read import read_records
from tests.egress.origin import _Site, config, running


def _only_request(log: Path | None) -> dict[str, object]:
    assert log is not None
    [record] = [r for r in read_records(log) if r["type"] == "request"]
    return record


def _head_then_leave(proxy_url: str, request: bytes) -> bytes:
    """Send ``request`` to the proxy, read until the answer's head is whole, then reset the
    connection (the client goes away mid-answer)."""
    host, port = proxy_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return answer


def test_a_client_gone_mid_answer_keeps_the_answers_status(site: _Site, tmp_path: Path) -> None:
    port = site.server_address[1]
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        answer = _head_then_leave(
            url, b"GET http://127.0.0.1:%d/size?n=200000000 HTTP/1.1\r\n\r\n" % port
        )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    record = _only_request(cfg.audit_log)
    assert record["status"] == 200
    assert "client went away" in str(record["error"])
