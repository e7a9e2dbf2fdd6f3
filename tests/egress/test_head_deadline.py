"""A connection owes a whole request head within the head limit of its opening (or of its
previous answer), whatever bytes it sends meanwhile: blank lines, nothing at all."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from airlock.egress import Limits
from airlock.egress.audit_read import read_records
from tests.egress.origin import _Site, config, exchange, running


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _until_closed(sock: socket.socket, seconds: float) -> bytes:
    """What ``sock`` received until the proxy closed it (at most ``seconds``)."""
    sock.settimeout(seconds)
    answer = b""
    with contextlib.suppress(OSError):
        while piece := sock.recv(1000):
            answer += piece
    return answer


def test_blank_lines_alone_hold_no_place_past_the_head_limit(site: _Site, tmp_path: Path) -> None:
    """Clients that send only blank lines (``\\r\\n`` now and then: no request begins, each
    read kept the idle limit off) take every place; past the head limit each is answered 408
    and closed, with a record, and a request then finds a place and is served."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=60, head_seconds=0.5, max_connections=2))
    port = site.server_address[1]
    request = b"GET http://127.0.0.1:%d/after HTTP/1.1\r\nConnection: close\r\n\r\n" % port
    answers: list[bytes] = []
    with running(cfg) as (url, _):
        holders = [_connect(url), _connect(url)]
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.1):
                for sock in holders:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"\r\n")

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            time.sleep(0.2)
            turned_away = exchange(url, request)
            started = time.monotonic()
            answers = [_until_closed(sock, 10) for sock in holders]
            held = time.monotonic() - started
            served = exchange(url, request)
        finally:
            stop.set()
            sender.join(5)
            for sock in holders:
                sock.close()
    assert turned_away.startswith(b"HTTP/1.1 503 "), turned_away
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers
    assert held < 5
    assert served.startswith(b"HTTP/1.1 200 "), served
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert [r["status"] for r in records] == [408, 408, 200]
    assert "not whole within 0.5 s" in records[0]["reason"]


def test_a_connection_that_sends_nothing_is_closed_at_the_head_limit(tmp_path: Path) -> None:
    """A connection opened and never used is closed once the head limit has passed, long
    before the idle limit, without an answer or a record (nothing was asked)."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=60, head_seconds=0.5))
    with running(cfg) as (url, _), _connect(url) as sock:
        started = time.monotonic()
        answer = _until_closed(sock, 10)
        held = time.monotonic() - started
    assert answer == b""
    assert held < 5
    assert [r["type"] for r in read_records(cfg.audit_log)] == ["start", "run"]  # type: ignore[arg-type]


def test_a_kept_connection_left_unused_is_closed_at_the_head_limit(
    site: _Site, tmp_path: Path
) -> None:
    """After an answer on a kept connection, the next head is owed within the head limit of
    that answer: a client that keeps the connection without using it is closed then, without
    a word (no 408 it could take for the answer to a request it sends meanwhile)."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=60, head_seconds=0.5))
    port = site.server_address[1]
    with running(cfg) as (url, _), _connect(url) as sock:
        sock.sendall(b"GET http://127.0.0.1:%d/kept HTTP/1.1\r\n\r\n" % port)
        first = sock.recv(1000)
        started = time.monotonic()
        rest = _until_closed(sock, 10)
        held = time.monotonic() - started
    assert first.startswith(b"HTTP/1.1 200 "), first
    assert rest == b""
    assert held < 5
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert [r["status"] for r in records] == [200]


def test_a_head_begun_after_an_answer_is_timed_from_that_answer(
    site: _Site, tmp_path: Path
) -> None:
    """A kept connection that begins its next head and trickles it, a byte now and then, is
    answered 408 once the head limit has passed since the answer before."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=60, head_seconds=0.5))
    port = site.server_address[1]
    with running(cfg) as (url, _), _connect(url) as sock:
        sock.sendall(b"GET http://127.0.0.1:%d/first HTTP/1.1\r\n\r\n" % port)
        first = sock.recv(1000)
        started = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in b"GET http://127.0.0.1/second HTTP/1.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa":
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > 10:
                    break
        rest = _until_closed(sock, 10)
    assert first.startswith(b"HTTP/1.1 200 "), first
    assert rest.startswith(b"HTTP/1.1 408 "), rest
