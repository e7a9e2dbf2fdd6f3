"""A gathered body with a ``Content-Encoding`` is checked for secrets off the event loop,
however small it is as sent: 24 KB of gzip decode to 24 MiB, whose check takes seconds; on
the loop it held every other connection (and the run's end) that long. Through the real proxy
on loopback, inside an inspected host's TLS and in plain HTTP to it (``--secrets block``)."""

from __future__ import annotations

import socket
import threading
import time
import zlib
from pathlib import Path

import pytest

from airlock.egress.scan import SecretsMode
from tests.egress.harness import inspected_setup, inspected_tls, tls_origin, until_closed
from tests.egress.origin import config, exchange, origin, running

DECODED_MIB = 24
"""The body decoded: ``\\x41`` escapes, which the check reads as the engine's readings do
(seconds for 24 MiB), sent as about 24 KB of gzip."""


def _bomb() -> bytes:
    piece = b"\\x41" * (1 << 18)  # 1 MiB
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([packer.compress(piece) for _ in range(DECODED_MIB)] + [packer.flush()])


def _head(target: str, host: str, size: int) -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Encoding: gzip\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()


def _slowest_answer_meanwhile(url: str, sending: threading.Thread) -> float:
    """The slowest of the proxy's answers to a refused request, asked again and again while
    ``sending`` goes on."""
    slowest = 0.0
    while sending.is_alive():
        asked = time.monotonic()
        answer = exchange(url, b"GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        slowest = max(slowest, time.monotonic() - asked)
        assert answer.startswith(b"HTTP/1.1 403 ")
        time.sleep(0.05)
    return slowest


@pytest.mark.parametrize("inside_tls", [True, False], ids=["inspected_tls", "plain_http"])
def test_a_compressed_body_is_checked_while_other_connections_are_answered(
    tmp_path: Path, inside_tls: bool
) -> None:
    body = _bomb()
    assert len(body) < 64 * 1024  # small as sent: checked on the loop before
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {}, SecretsMode.BLOCK)
    cfg = config(tmp_path, inspection=inspection)
    answers: list[bytes] = []
    with (
        tls_origin(origin_ca, "localhost") as tls_site,
        origin() as plain_site,
        running(cfg) as (url, _),
    ):

        def send() -> None:
            if inside_tls:
                port = tls_site.server_address[1]
                with inspected_tls(url, bundle, port) as tls:
                    tls.settimeout(60)
                    tls.sendall(_head("/v1/messages", f"localhost:{port}", len(body)) + body)
                    answers.append(until_closed(tls))
                return
            port = plain_site.server_address[1]
            proxy = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
            with socket.create_connection(proxy, timeout=60) as sock:
                target = f"http://localhost:{port}/v1/messages"
                sock.sendall(_head(target, f"localhost:{port}", len(body)) + body)
                answers.append(until_closed(sock))

        started = time.monotonic()
        sending = threading.Thread(target=send)
        sending.start()
        slowest = _slowest_answer_meanwhile(url, sending)
        sending.join(60)
        took = time.monotonic() - started
    (answer,) = answers
    assert answer.startswith(b"HTTP/1.1 200 ")  # checked whole, no secret in it: sent on
    assert took > 1.5, "the check was too quick here to tell"
    assert slowest < 1.0, f"another connection waited {slowest:.1f} s of the {took:.1f} s check"
