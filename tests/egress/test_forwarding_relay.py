"""A plain response relayed as it arrives (``forwarding._relay_response``): a client that reads
slowly holds the destination back and then gets every byte, its connection and the kept
upstream one going on after; an answer that came before the request was sent whole is
relayed too."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from pathlib import Path

from airlock.egress.audit_read import read_records
from tests.egress.origin import _Site, config, running

BIG = 24 * 1024 * 1024
"""Far more than the client's transport may hold (1 MiB) and the sockets' buffers."""


def _client(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return sock


def _read_response(sock: socket.socket, pause: float = 0.0) -> tuple[bytes, bytes]:
    """One response with a ``Content-Length``: its head and its body, read 64 KiB at a time,
    waiting ``pause`` seconds after the first piece (the proxy's buffer to the client fills)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    time.sleep(pause)
    digest = hashlib.sha256(body)
    got = len(body)
    while got < length:
        piece = sock.recv(min(65536, length - got))
        assert piece, f"cut after {got} of {length} bytes"
        digest.update(piece)
        got += len(piece)
    return head, digest.digest()


def test_a_slow_client_gets_a_large_answer_whole_and_its_connection_goes_on(
    site: _Site, tmp_path: Path
) -> None:
    """The client stops reading for a while: the destination is not read meanwhile (its
    bytes are not held by the proxy), then every byte reaches the client, and the next
    request on the same connection (and the same kept upstream connection) is answered."""
    cfg = config(tmp_path)
    port = site.server_address[1]
    expected = hashlib.sha256(b"z" * BIG).digest()
    with running(cfg) as (url, _), _client(url) as sock:
        sock.sendall(b"GET http://127.0.0.1:%d/size?n=%d HTTP/1.1\r\n\r\n" % (port, BIG))
        head, digest = _read_response(sock, pause=1.0)
        assert head.startswith(b"HTTP/1.1 200 ") and digest == expected
        sock.sendall(b"GET http://127.0.0.1:%d/size?n=10 HTTP/1.1\r\n\r\n" % port)
        head, digest = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert digest == hashlib.sha256(b"z" * 10).digest()
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert [(r["status"], r["error"]) for r in records] == [(200, None), (200, None)]
    assert records[0]["bytes_in"] > BIG
    assert [path for path, _ in site.seen] == [f"/size?n={BIG}", "/size?n=10"]


def test_an_answer_sent_before_the_request_was_whole_is_relayed(tmp_path: Path) -> None:
    """The destination answers as soon as it has the head, before the body has come (an
    early ``200``, then it reads the body): the answer waits in the connection's reader while
    the proxy still sends the body, and is relayed once it has."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    bodies: list[bytes] = []

    def answer() -> None:
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
            body = data.partition(b"\r\n\r\n")[2]
            while len(body) < 10:
                body += connection.recv(65536)
            bodies.append(body)
            time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    cfg = config(tmp_path)
    with running(cfg) as (url, _), _client(url) as sock:
        sock.sendall(
            b"POST http://127.0.0.1:%d/upload HTTP/1.1\r\nContent-Length: 10\r\n\r\nfirst" % port
        )
        time.sleep(0.5)  # the answer has come meanwhile
        sock.sendall(b"-half")
        answer_bytes = b""
        while not answer_bytes.endswith(b"early"):
            piece = sock.recv(65536)
            assert piece, answer_bytes
            answer_bytes += piece
    server.close()
    thread.join(5)
    assert answer_bytes.startswith(b"HTTP/1.1 200 ") and answer_bytes.endswith(b"early")
    assert bodies == [b"first-half"]
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert (record["status"], record["error"], record["bytes_out"] > 10) == (200, None, True)


def test_a_destination_that_resets_mid_response_is_recorded_as_its_failure(
    tmp_path: Path,
) -> None:
    """The destination sends a head and part of its body, then resets the connection: the
    client's connection ends (its response cut), and the record blames the destination
    (502, the error naming it), where it said the client went away."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"p" * 1000)
            time.sleep(0.3)
            linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # on, 0 s: a reset
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    cfg = config(tmp_path)
    with running(cfg) as (url, _), _client(url) as sock:
        sock.sendall(b"GET http://127.0.0.1:%d/part HTTP/1.1\r\n\r\n" % port)
        got = b""
        with contextlib.suppress(OSError):
            while piece := sock.recv(65536):
                got += piece
    server.close()
    thread.join(5)
    assert got.startswith(b"HTTP/1.1 200 ") and len(got.partition(b"\r\n\r\n")[2]) == 1000
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert record["status"] == 502, (record["status"], record["error"])
    error = str(record["error"])
    assert "destination" in error and "client went away" not in error, error
    assert record["bytes_in"] > 1000
