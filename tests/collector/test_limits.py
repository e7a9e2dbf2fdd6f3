"""The collector's server under hostile clients: sizes, timeouts and the connection cap, on loopback."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airlock.collector import ReloadingBlockList
from airlock.collector.limits import Limits
from tests.collector.harness import running
from tests.servers import airlock_serve

SMALL = Limits(
    max_header_bytes=8 * 1024,
    header_timeout=1.0,
    idle_timeout=1.0,
    body_timeout=1.0,
    max_connections=20,
)
PREFLIGHT = "/api/web/domain_info?domain=example.org"


AUTH = {"line": ""}
"""The Authorization header line of the organisation of the server running (set by ``serving``)."""


@contextlib.contextmanager
def serving(tmp_path: Path, limits: Limits) -> Iterator[int]:
    """The collector app (preflight and feedback) under ``limits``, on a free loopback port."""
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("evil.test\n")
    source = ReloadingBlockList(blocklist, clock=time.monotonic)
    url = f"sqlite:///{tmp_path / 'data' / 'collector.sqlite3'}"
    with running(url, tmp_path / "data", blocklist=source, limits=limits) as served:
        AUTH["line"] = f"Authorization: Bearer {served.key('limits')}\r\n"
        yield int(served.url.rsplit(":", 1)[1])


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    with serving(tmp_path, SMALL) as number:
        yield number


def _closed_within(client: socket.socket, seconds: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    client.settimeout(seconds)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := client.recv(65536):
            received += chunk
    return received, time.monotonic() - started


def _preflight(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{PREFLIGHT}", timeout=5)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 12345678901234567890\r\n" * 1000 + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"c" * 20_000,
    ],
    ids=["long_url", "one_big_header", "many_headers", "unfinished_header"],
)
def test_oversized_head_refused(port: int, head: bytes) -> None:
    """A request line and headers over the limit: 431 and the connection closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            client.sendall(head)
        received, _ = _closed_within(client, 5)
    assert received.startswith(b"HTTP/1.1 431 ")
    assert _preflight(port).status_code == 200


def test_head_under_the_limit_served(port: int) -> None:
    """Headers just under the limit are served as usual."""
    response = httpx.get(
        f"http://127.0.0.1:{port}{PREFLIGHT}", headers={"X-Pad": "p" * 7000}, timeout=5
    )
    assert response.status_code == 200 and response.json()["can_fetch"] is True


def test_endless_header_stream_cut_early(port: int) -> None:
    """A header that would grow to hundreds of MB is cut after about the limit, not read whole."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        chunk = b"h" * 65536
        with contextlib.suppress(ConnectionResetError, BrokenPipeError, TimeoutError):
            for _ in range(400 * 16):  # 400 MB at most
                client.sendall(chunk)
                sent += len(chunk)
    assert sent < 32 * 1024 * 1024


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"", b""),
        (b"GE", b"HTTP/1.1 408 "),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", b"HTTP/1.1 408 "),
        (
            b"POST /v1/survey-ratings HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nAUTH\r\n"
            b"Content-Length: 100\r\n\r\n{",
            b"",
        ),
    ],
    ids=["nothing", "half_request_line", "headers_unfinished", "body_stalled"],
)
def test_stalled_connections_closed(port: int, sent: bytes, answer: bytes) -> None:
    """A connection that sends nothing, half a head, or stops mid-body is closed after its timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(sent.replace(b"AUTH\r\n", AUTH["line"].encode()))
        received, took = _closed_within(client, 10)
    assert received.startswith(answer) and 0.5 < took < 5


def test_trickled_head_closed_on_time(port: int) -> None:
    """A head trickled a byte at a time is closed when its whole-head deadline passes."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for byte in head:
                client.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > 5:
                    break
        received, _ = _closed_within(client, 5)
    assert received.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5


def test_idle_keep_alive_closed(port: int) -> None:
    """After an answer, a kept-alive connection that asks nothing more is closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(f"GET {PREFLIGHT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received, took = _closed_within(client, 10)
    assert received.startswith(b"HTTP/1.1 200 ") and took < 5


@pytest.mark.parametrize(
    ("path", "length"),
    [
        ("/v1/survey-ratings", 64 * 1024 + 1),
        ("/v1/feedback-bundles", 1024 * 1024 + 1),
        ("/openapi.json", 2 * 1024 * 1024),
        ("/api/web/domain_info", 1_500_000_000),
        ("/nowhere", 1_500_000_000),
    ],
)
def test_declared_body_over_limit_refused_unread(port: int, path: str, length: int) -> None:
    """A Content-Length over the path's limit is answered 413 before any of the body is sent."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nContent-Length: {length}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(head.encode())
        received, _ = _closed_within(client, 5)
    assert received.startswith(b"HTTP/1.1 413 ") and b"limit" in received


@pytest.mark.parametrize("path", ["/v1/survey-ratings", "/v1/feedback-bundles", "/openapi.json"])
def test_chunked_body_cut_at_limit(port: int, path: str) -> None:
    """A body without a length is cut near the limit (413, or refused unread), never read whole."""
    sent = 0
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(head.encode())
        with contextlib.suppress(ConnectionResetError, BrokenPipeError, TimeoutError):
            for _ in range(1500 * 16):  # up to 1.5 GB
                client.sendall(chunk)
                sent += len(chunk)
        received, _ = _closed_within(client, 5)
    assert sent < 64 * 1024 * 1024
    if received:  # the answer may be lost to the reset of a connection still sending
        assert received.startswith(b"HTTP/1.1 4")  # 413, or the route's own refusal
    assert _preflight(port).status_code == 200


@pytest.mark.parametrize("kind", ["nothing", "half_head", "half_body", "idle_after_answer"])
def test_connection_cap_keeps_service_answering(tmp_path: Path, kind: str) -> None:
    """Many more stalled connections than the cap (long timeouts): the preflight still answers."""
    limits = Limits(header_timeout=60, body_timeout=60, idle_timeout=60, max_connections=16)
    stalled: list[socket.socket] = []
    with serving(tmp_path, limits) as port:
        try:
            for _ in range(60):
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                stalled.append(client)
                if kind == "half_head":
                    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                elif kind == "half_body":
                    client.sendall(
                        b"POST /v1/survey-ratings HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\n"
                        + AUTH["line"].encode()
                        + b"Content-Length: 100\r\n\r\n{"
                    )
                elif kind == "idle_after_answer":
                    client.sendall(f"GET {PREFLIGHT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            time.sleep(0.2)
            for _ in range(5):
                started = time.monotonic()
                response = _preflight(port)
                assert response.status_code == 200 and time.monotonic() - started < 2
        finally:
            for client in stalled:
                client.close()


def test_airlock_serve_answers_past_300_stalled_connections(tmp_path: Path) -> None:
    """`airlock serve` with 300 half-sent connections open still answers the preflight."""
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("evil.test\n")
    stalled: list[socket.socket] = []
    with airlock_serve("--blocklist", str(blocklist), "--data-dir", str(tmp_path / "d")) as (
        url,
        _,
    ):
        port = int(url.rsplit(":", 1)[1])
        try:
            for number in range(300):
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                client.sendall(b"GET / HTTP/1.1\r\n" if number % 2 else b"")
                stalled.append(client)
            for domain, can_fetch in [("evil.test", False), ("example.org", True)]:
                response = httpx.get(
                    f"{url}/api/web/domain_info", params={"domain": domain}, timeout=5
                )
                assert response.json()["can_fetch"] is can_fetch
        finally:
            for client in stalled:
                client.close()
