"""Inspected connections under review: many requests on one connection do not pile up
closed upstream connections, an origin that closes after an HTTP/1.0 answer is not sent the
next request, and a client that speaks only HTTP/2 leaves a record of its failure."""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import gc
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from airlock.egress.scan import SecretsMode
from airlock.policy import decide
from tests.egress.harness import Rig, inspected_tls, tls_origin, until_closed
from tests.policy.helpers import context


@contextlib.contextmanager
def _rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path, decide(context({})), SecretsMode.REPORT, {"localhost"})
    with tls_origin(rig.origin_ca, "localhost") as origin:
        rig.origin = origin  # type: ignore[attr-defined]
        rig.origin_port = origin.server_address[1]  # type: ignore[attr-defined]
        with rig.front:
            yield rig


def _inspected(rig: Rig, port: int, alpn: list[str] | None = None) -> ssl.SSLSocket:
    return inspected_tls(f"http://127.0.0.1:{rig.front.port}", rig.bundle, port, alpn)


def _answer(stream: object) -> bytes:
    """One answer sized by its length, read from a socket's file."""
    status = stream.readline()  # type: ignore[attr-defined]
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):  # type: ignore[attr-defined]
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status + stream.read(length)  # type: ignore[attr-defined,no-any-return]


def _open_tls_protocols() -> int:
    gc.collect()
    return sum(isinstance(o, asyncio.sslproto.SSLProtocol) for o in gc.get_objects())


def test_posts_on_one_connection_do_not_keep_their_closed_upstreams(tmp_path: Path) -> None:
    """Each request with a body goes upstream with ``Connection: close`` on a connection of
    its own; once closed, that connection must be let go of. They used to be kept until
    the client's connection ended, each with its TLS buffer (256 KB): a client inside grew
    the proxy by that much per ``POST`` on one connection, without bound."""
    posts = 60
    with _rig(tmp_path) as rig:
        port = rig.origin_port  # type: ignore[attr-defined]
        before = _open_tls_protocols()
        with _inspected(rig, port) as tls, tls.makefile("rb") as stream:
            for _ in range(posts):
                tls.sendall(
                    f"POST /x HTTP/1.1\r\nHost: localhost:{port}\r\n"
                    "Content-Length: 2\r\n\r\n{}".encode()
                )
                assert _answer(stream).startswith(b"HTTP/1.1 200")
            rig.wait_records(posts)
            deadline = time.monotonic() + 10
            while _open_tls_protocols() - before > 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            held = _open_tls_protocols() - before
            tls.sendall(
                f"GET /x HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            until_closed(tls)
        assert held <= 10, f"{held} TLS connections held after {posts} POSTs on one connection"


@contextlib.contextmanager
def _http10_origin(rig: Rig) -> Iterator[tuple[int, list[bytes]]]:
    """A TLS origin that answers each request ``HTTP/1.0`` with a length and no
    ``Connection`` header (so it closes), closing a moment after its answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    context = rig.origin_ca.server_context("localhost")
    served: list[bytes] = []

    def one(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                piece = tls.recv(4096)
                if not piece:
                    return
                data += piece
            served.append(data.split(b"\r\n", 1)[0])
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            time.sleep(0.3)  # a busy server: its close comes after the next request

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], served
    finally:
        listener.close()


def test_an_http10_answer_is_not_followed_by_a_request_on_its_connection(
    tmp_path: Path,
) -> None:
    """An HTTP/1.0 answer without ``Connection: keep-alive`` ends its connection: the next
    request goes on a new one. It used to be written into the closing one, and the client
    got ``502`` for a request its origin never saw."""
    rig = Rig(tmp_path, decide(context({})), SecretsMode.REPORT, {"localhost"})
    with _http10_origin(rig) as (port, served), rig.front:
        with _inspected(rig, port) as tls:
            ask = f"GET /a HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"
            last = f"GET /b HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
            tls.sendall((ask + last).encode())
            answers = until_closed(tls)
        records = rig.wait_records(2)
        time.sleep(0.6)  # the origin's closes: the upstream connections end before the front
    assert answers.count(b"HTTP/1.0 200 OK") == 2, answers
    assert [(r["path"], r["status"], r["error"]) for r in records] == [
        ("/a", 200, None),
        ("/b", 200, None),
    ]
    assert served == [b"GET /a HTTP/1.1", b"GET /b HTTP/1.1"]


def test_a_client_that_offers_only_h2_leaves_a_record(tmp_path: Path) -> None:
    """A client that speaks only HTTP/2 offers ``h2`` alone; airlock agrees on no protocol
    (it reads HTTP/1.1), and such a client (Go's, gRPC's) gives up without a request. Its
    failure used to leave no record at all; now one names the host and why."""
    with _rig(tmp_path) as rig:
        port = rig.origin_port  # type: ignore[attr-defined]
        with _inspected(rig, port, alpn=["h2"]) as tls:
            assert tls.selected_alpn_protocol() is None
        records = rig.wait_records(1, timeout=5)
        with _inspected(rig, port, alpn=["h2", "http/1.1"]) as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"  # a pool's spare: no record
        with _inspected(rig, port) as tls:  # no protocol offered, a request: its record only
            tls.sendall(
                f"GET /x HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            until_closed(tls)
        rig.wait_records(2)
        time.sleep(0.3)
    assert len(records) == 1, records
    assert [r["type"] for r in rig.records] == ["tunnel", "request"], rig.records
    record = records[0]
    assert (record["type"], record["host"], record["method"]) == ("tunnel", "localhost", "CONNECT")
    assert "HTTP/2" in record["error"] and "--inspect" in record["error"]
    assert (record["flow"], record["path"]) == ("unclassified", "")  # a request's fields, kinds
