"""A plain response cut by the idle limit (``forwarding._relay_response``): its record says
what the client got, the status it saw and why it was cut, whether the client stopped
reading (the destination is paused meanwhile) or the destination stopped sending, and
whatever the response's framing (one that ends at the close did not end there)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.egress import Limits
from airlock.egress.audit_read import read_records
from tests.egress.origin import config, running

BIG = 32 * 1024 * 1024
"""Far more than the client's transport may hold (1 MiB) and the sockets' buffers."""


@contextlib.contextmanager
def _origin(answer: bytes, body: int, stall: float = 0.0) -> Iterator[int]:
    """An origin on 127.0.0.1 (its port) that answers one request with ``answer`` (a head,
    maybe some body), then ``body`` bytes sent as fast as they are taken, then waits
    ``stall`` seconds before it closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                connection.sendall(answer)
                connection.settimeout(10)
                sent = 0
                while sent < body:
                    sent += connection.send(b"z" * min(65536, body - sent))
                time.sleep(stall)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        thread.join(15)


def _exchange(
    tmp_path: Path, answer: bytes, body: int, *, reads: bool, stall: float = 0.0
) -> tuple[bytes, dict[str, Any]]:
    """One request through a proxy whose idle limit is 0.5 s; what the client got (it reads
    nothing for 2 s unless ``reads``), and the request's record."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=0.5))
    with _origin(answer, body, stall) as port, running(cfg) as (url, _):
        host, proxy_port = url.removeprefix("http://").split(":")
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.settimeout(10)
            sock.connect((host, int(proxy_port)))
            sock.sendall(b"GET http://127.0.0.1:%d/x HTTP/1.1\r\n\r\n" % port)
            if not reads:
                time.sleep(2)  # the proxy's buffer to it fills, and the idle limit passes
            got = b""
            with contextlib.suppress(OSError):
                while piece := sock.recv(65536):
                    got += piece
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    return got, record


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG],
    ids=["until-close", "sized"],
)
def test_a_client_that_stops_reading_is_cut_by_the_idle_limit_as_its_record_says(
    tmp_path: Path, head: bytes
) -> None:
    """The client stops reading a large answer: once idle too long it is cut, and its
    record has the status it got (the destination's ``200``, not a ``502``), the idle limit
    as the error (not none: an answer that ends at the close was not whole), and less than
    the whole answer."""
    got, record = _exchange(tmp_path, head, BIG, reads=False)
    assert got.startswith(b"HTTP/1.1 200 ") and len(got) < BIG
    assert record["status"] == 200
    assert "idle for more than 0.5 s" in (record["error"] or "")
    assert len(got) <= record["bytes_in"] < BIG


def test_a_destination_that_stops_sending_an_answer_that_ends_at_the_close_is_recorded_cut(
    tmp_path: Path,
) -> None:
    """The destination sends the head and some of an answer that ends at the close, then
    nothing: the idle limit cuts the connection, and the record says so (the close was the
    proxy's, not the destination's: the answer did not end)."""
    got, record = _exchange(tmp_path, b"HTTP/1.1 200 OK\r\n\r\npart", 0, reads=True, stall=3.0)
    assert got == b"HTTP/1.1 200 OK\r\n\r\npart"
    assert "idle for more than 0.5 s" in (record["error"] or "")
    assert record["bytes_in"] == len(got)
