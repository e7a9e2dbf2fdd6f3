"""Hostile HTTP servers on 127.0.0.1 for the fetch guard's limits: slow and huge answers.

Each is a raw TCP server in a thread that reads a request's headers, then misbehaves in one of
the ways of :data:`MODES`. Every behaviour is bounded: a trickle stops after ``MAX_SECONDS``,
a huge answer after ``HUGE_BYTES``, and both stop as soon as the client goes away.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

MAX_SECONDS = 30.0
"""No connection is served longer than this, whatever the client does."""
HUGE_BYTES = 1 << 30
"""What the huge answers announce and send at most: 1 GiB."""
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
MODES = ("trickle-headers", "trickle-body", "huge-json", "huge-chunked", "trickle-tls")


@dataclass
class Hostile:
    """A running hostile server: its port, and what it did."""

    port: int
    mode: str
    requests: list[bytes] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    """Bytes sent on each connection, once it is over."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _trickle(conn: socket.socket, head: bytes, body: bytes, interval: float) -> int:
    """Send ``head`` at once and ``body`` a byte each ``interval`` (or the reverse, by mode)."""
    sent = 0
    start = time.monotonic()
    if head:
        conn.sendall(head)
        sent += len(head)
    for index in range(len(body)):
        if time.monotonic() - start > MAX_SECONDS:
            break
        conn.sendall(body[index : index + 1])
        sent += 1
        time.sleep(interval)
    return sent


def _huge(conn: socket.socket, chunked: bool) -> int:
    block = b'{"can_fetch": true, "padding": "' + b"x" * 65000 + b'"}'
    if chunked:
        conn.sendall(JSON_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        frame = b"%x\r\n%s\r\n" % (len(block), block)
    else:
        conn.sendall(JSON_HEAD + b"Content-Length: %d\r\n\r\n" % HUGE_BYTES)
        frame = block
    sent = 0
    start = time.monotonic()
    while sent < HUGE_BYTES and time.monotonic() - start < MAX_SECONDS:
        conn.sendall(frame)
        sent += len(frame)
    return sent


def _serve(conn: socket.socket, server: Hostile) -> None:
    sent = 0
    with conn, suppress(OSError):
        server.requests.append(_read_head(conn))
        if server.mode == "trickle-tls":  # a TLS record header announcing 4 KB, then a trickle
            sent = _trickle(conn, b"\x16\x03\x03\x10\x00", bytes(4096), 0.2)
        elif server.mode == "trickle-headers":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + b"X-Slow: " + b"s" * 60
            sent = _trickle(conn, b"", head + b"\r\nContent-Length: 2\r\n\r\nok", 0.2)
        elif server.mode == "trickle-body":
            body = b'{"can_fetch": true}' + b" " * 200
            head = JSON_HEAD + b"Content-Length: %d\r\n\r\n" % len(body)
            sent = _trickle(conn, head, body, 0.2)
        else:
            sent = _huge(conn, chunked=server.mode == "huge-chunked")
    server.sent.append(sent)


@contextmanager
def hostile_server(mode: str) -> Iterator[Hostile]:
    """A hostile server in ``mode`` (one of :data:`MODES`) on 127.0.0.1, for the block's length."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    server = Hostile(listener.getsockname()[1], mode)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=_serve, args=(conn, server), daemon=True)
            worker.start()
            workers.append(worker)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for worker in workers:
            worker.join(MAX_SECONDS + 5)
