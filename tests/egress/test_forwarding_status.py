"""A plain request's record keeps the status its client was sent when the transfer ends
early: the client leaving mid-answer, or the destination cutting it after its head."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

from airlock.egress.audit import read_records
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


def test_a_destination_cutting_its_answer_keeps_its_status(tmp_path: Path) -> None:
    """The destination sends a head and part of the body, then closes: the client got a
    ``200`` and part of it, which the record says, with the error."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_part() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)

    thread = threading.Thread(target=answer_part, daemon=True)
    thread.start()
    cfg = config(tmp_path)
    try:
        with running(cfg) as (url, _):
            host, proxy_port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(proxy_port)), timeout=20) as sock:
                sock.sendall(b"GET http://127.0.0.1:%d/part HTTP/1.1\r\n\r\n" % port)
                got = b""
                while data := sock.recv(65536):
                    got += data
    finally:
        thread.join(20)
        server.close()
    assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"x" * 10), got
    record = _only_request(cfg.audit_log)
    assert record["status"] == 200
    assert "closed the connection mid-response" in str(record["error"])
