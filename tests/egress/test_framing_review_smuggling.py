"""Hostile requests and responses through the real proxy, read differentially: what a raw
origin on loopback gets (read by h11, a strict parser apart from airlock's) is exactly what
the proxy let through, and what it refused reaches no one.

Found in review (issue 13), each failing before its fix in ``egress.framing`` or
``egress.http1``: inside inspected TLS a head or chunk line ending in a bare LF, blank lines
before a request, CRs before a request line (``\\rGET``, a method of its own to airlock, a
``GET`` to llhttp), a head past ``MAX_HEAD``, a malformed response head, ``Transfer-Encoding``
in HTTP/1.0, and ``Connection`` read as a substring of its last line.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import pytest

from airlock.egress.audit_read import read_records
from tests.egress.harness import inspected_setup, inspected_tls
from tests.egress.loopback import LoopbackServer
from tests.egress.origin import config, running

WAIT = 5.0
"""Seconds a client waits for its answer: far below the inspected connection's idle limit
(120 s), which is all that ended a request the proxy waited on."""


class RawOrigin(LoopbackServer):
    """An origin on 127.0.0.1 (TLS when given a context) that reads requests with h11 and
    keeps what it got: each request whole (method, target, body) and every connection's
    raw bytes. It answers ``200`` naming the request, or ``canned`` bytes once (then reads
    on until the proxy closes, sending nothing more)."""

    def __init__(self, tls: ssl.SSLContext | None = None, canned: bytes | None = None) -> None:
        self.tls = tls
        self.canned = canned
        self.requests: list[tuple[str, str, bytes]] = []
        self.raw: list[bytearray] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        raw = bytearray()
        self.raw.append(raw)
        try:
            conn.settimeout(WAIT)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self._read(conn, raw)
        except (OSError, h11.RemoteProtocolError):
            pass
        finally:
            conn.close()

    def _read(self, conn: socket.socket, raw: bytearray) -> None:
        parser = h11.Connection(h11.SERVER)
        request: Any = None
        body = b""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                data = conn.recv(65536)
                raw += data
                parser.receive_data(data)
                if not data and parser.their_state is h11.IDLE:
                    return
            elif isinstance(event, h11.Request):
                request, body = event, b""
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                target = request.target.decode("latin-1")
                self.requests.append((request.method.decode(), target, body))
                if self.canned is not None:
                    conn.sendall(self.canned)
                    while data := conn.recv(65536):
                        raw += data
                    return
                text = f"ok {target}".encode()
                out = parser.send(
                    h11.Response(status_code=200, headers=[("Content-Length", str(len(text)))])
                )
                out += parser.send(h11.Data(data=text)) + parser.send(h11.EndOfMessage())
                conn.sendall(out)
                if parser.our_state is h11.MUST_CLOSE:
                    return
                parser.start_next_cycle()
            else:
                return


@contextlib.contextmanager
def raw_origin(
    tls: ssl.SSLContext | None = None, canned: bytes | None = None
) -> Iterator[RawOrigin]:
    origin = RawOrigin(tls, canned)
    try:
        yield origin
    finally:
        origin.close()


def _read_all(sock: socket.socket) -> bytes:
    """What comes until the proxy closes, or ``WAIT`` seconds pass without a byte."""
    answer = b""
    sock.settimeout(WAIT)
    with contextlib.suppress(OSError):
        while piece := sock.recv(65536):
            answer += piece
    return answer


def _inspected(
    tmp_path: Path, data: bytes, canned: bytes | None = None
) -> tuple[bytes, RawOrigin, list[dict[str, Any]]]:
    """Send ``data`` (``{port}`` the origin's) inside TLS to ``localhost`` that the proxy
    inspects; its answer, the origin, and the proxy's request records."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    with raw_origin(origin_ca.server_context("localhost"), canned) as origin:
        with running(cfg) as (url, _), inspected_tls(url, bundle, origin.port) as tls:
            tls.sendall(data.replace(b"{port}", b"%d" % origin.port))
            answer = _read_all(tls)
        time.sleep(0.05)
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    return answer, origin, records


def _plain(tmp_path: Path, data: bytes) -> tuple[bytes, RawOrigin, list[dict[str, Any]]]:
    """Send ``data`` (``{port}`` the origin's) to the proxy as plain HTTP."""
    cfg = config(tmp_path)
    with raw_origin() as origin, running(cfg) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
            sock.sendall(data.replace(b"{port}", b"%d" % origin.port))
            answer = _read_all(sock)
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    return answer, origin, records


HOST = b"Host: localhost:{port}\r\n"
CHUNKED = b"POST /v1/messages HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "refused_before_it_left"),
    [
        pytest.param(b"GET /v1/models HTTP/1.1\nHost: localhost\n\n", True, id="head_of_lf_lines"),
        pytest.param(
            b"GET /v1/models HTTP/1.1\r\n" + HOST + b"X-A: b\n\r\n", True, id="last_header_lf"
        ),
        pytest.param(CHUNKED + b"3\nabc\n0\n\n", False, id="chunk_lines_of_lf"),
        pytest.param(CHUNKED + b"3\r\nabc\r\n0\r\nX-T: 1\n\n", False, id="trailer_of_lf"),
    ],
)
def test_a_line_ending_in_a_bare_lf_inside_tls_is_answered_400_at_once(
    tmp_path: Path, data: bytes, refused_before_it_left: bool
) -> None:
    """Such a head (or chunked body) never holds the CRLF the reader waited for: the client
    got no answer until the connection's idle limit (120 s). Now it is refused when the line
    comes, in llhttp's words, and the origin gets no whole request."""
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"CR" in answer  # llhttp's words: "Missing expected CR after ..."
    assert origin.requests == []
    if refused_before_it_left:
        assert origin.raw == []
    [record] = records
    assert record["status"] == 400


def test_blank_lines_before_a_request_inside_tls_are_skipped(tmp_path: Path) -> None:
    """RFC 9112 §2.2: a server skips empty lines before a request (llhttp, and so the plain
    proxy, skips any number). Two of them were read as a head of nothing, which ended the
    connection without a word, the request after them unanswered."""
    data = b"\r\n\r\n\r\nGET /v1/models HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert origin.requests == [("GET", "/v1/models", b"")]
    assert [(r["path"], r["status"]) for r in records] == [("/v1/models", 200)]


def test_a_head_past_max_head_inside_tls_is_refused_431(tmp_path: Path) -> None:
    """The bound is ``MAX_HEAD`` (64 KiB), as the refusal says: the client's stream held up
    to 256 KiB, so a head of 100 KB went to the origin (and one past 256 KiB was refused
    saying 65536)."""
    data = b"GET /v1/models HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"65536" in answer
    assert origin.raw == []
    assert [(r["status"], r["decision"]) for r in records] == [(431, "deny")]


INJECTED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED"


@pytest.mark.parametrize(
    "canned",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Sneak: a\rContent-Length: 2\r\n\r\nok" + INJECTED,
            id="bare_cr_hiding_a_length",
        ),
        pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok" + INJECTED, id="lines_of_lf"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n" + INJECTED,
            id="length_and_chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Sneak: a\x00b\r\nContent-Length: 2\r\n\r\nok", id="nul"
        ),
    ],
)
def test_a_malformed_response_head_inside_tls_is_a_502_and_not_passed_on(
    tmp_path: Path, canned: bytes
) -> None:
    """A response head is passed on as the origin wrote it, so it is read by llhttp as the
    plain proxy reads responses: a bare CR that a lenient client (Python's email parser
    under ``http.client``) reads as a line end, hiding a ``Content-Length`` from airlock, was
    relayed; lines ending in LF left the client waiting; a framing fault was answered ``400``,
    the client's fault. Each is now a ``502`` naming the response, and nothing of it passes."""
    data = b"GET /v1/models HTTP/1.1\r\n" + HOST + b"\r\n"
    answer, origin, records = _inspected(tmp_path, data, canned)
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:200]
    assert b"malformed response head" in answer
    assert b"INJECTED" not in answer and b"X-Sneak" not in answer
    assert origin.requests == [("GET", "/v1/models", b"")]
    [record] = records
    assert record["status"] == 502 and "malformed response head" in record["error"]


TE_IN_HTTP10 = b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"


@pytest.mark.parametrize("inspected", [False, True], ids=["plain", "inspected"])
def test_transfer_encoding_in_an_http10_request_is_refused(tmp_path: Path, inspected: bool) -> None:
    """RFC 9112 §6.1: an HTTP/1.0 message with ``Transfer-Encoding`` has faulty framing (Go's
    server ignores the header there, reading the chunks as the next request); inside TLS it
    went to the origin as it came. Refused ``400``, and nothing reaches the origin."""
    if inspected:
        data = b"POST /v1/messages HTTP/1.0\r\n" + HOST + TE_IN_HTTP10
        answer, origin, records = _inspected(tmp_path, data)
    else:
        data = b"POST http://127.0.0.1:{port}/v1/messages HTTP/1.0\r\n" + TE_IN_HTTP10
        answer, origin, records = _plain(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"Transfer-Encoding in an HTTP/1.0 request" in answer
    assert origin.raw == []
    [record] = records
    assert (record["status"], record["decision"]) == (400, "deny")


@pytest.mark.parametrize(
    ("first", "served"),
    [
        pytest.param(
            b"GET /one HTTP/1.0\r\n" + HOST + b"Connection: x-keep-alive-y\r\n\r\n",
            ["/one"],
            id="http10_a_token_holding_keep_alive",
        ),
        pytest.param(
            b"GET /one HTTP/1.1\r\n"
            + HOST
            + b"Connection: close\r\nConnection: keep-alive\r\n\r\n",
            ["/one"],
            id="close_on_a_line_before_the_last",
        ),
        pytest.param(
            b"GET /one HTTP/1.1\r\n" + HOST + b"Connection: x-close-y\r\n\r\n",
            ["/one", "/two"],
            id="a_token_holding_close",
        ),
    ],
)
def test_connection_is_read_as_tokens_of_every_line_inside_tls(
    tmp_path: Path, first: bytes, served: list[str]
) -> None:
    """Whether a request ends its connection is read from every ``Connection`` line's
    tokens, as llhttp and servers read it (it was a substring of the last line): a request
    pipelined after one that closes is not read, and one after a request that keeps the
    connection is."""
    second = b"GET /two HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    answer, origin, records = _inspected(tmp_path, first + second)
    assert [target for _, target, _ in origin.requests] == served
    assert [r["path"] for r in records] == served
    assert answer.count(b"HTTP/1.1 200 ") == len(served)


@pytest.mark.parametrize(
    ("data", "status", "seen"),
    [
        pytest.param(
            b"\rGET /v1/models HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nhello",
            400,
            [],
            id="a_body_on_a_get",
        ),
        pytest.param(
            b"\rHEAD /v1/models HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n",
            400,
            [],
            id="a_body_on_a_head",
        ),
        pytest.param(
            b"\r\rGET /v1/models HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
            200,
            [("GET", "/v1/models", b"")],
            id="no_body",
        ),
    ],
)
def test_crs_before_a_request_line_inside_tls_are_skipped_as_llhttp_skips_them(
    tmp_path: Path, data: bytes, status: int, seen: list[tuple[str, str, bytes]]
) -> None:
    """llhttp (the check every request inside TLS passes) and nginx skip CRs before a
    request line: ``\\rGET`` is a ``GET``. It was read as a method ``\\rGET`` of its own:
    recorded so, sent on with its CR, and a ``GET`` or ``HEAD`` with a body got past their
    refusal (a server that leaves such a body unread takes it for a request airlock never
    judged). Now it is the ``GET`` llhttp reads, judged, recorded and sent on as one."""
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert origin.requests == seen
    if status == 400:
        assert b"a body on a" in answer and origin.raw == []
    else:
        assert bytes(origin.raw[0]).startswith(b"GET /v1/models HTTP/1.1\r\n")
    [record] = records
    assert record["method"] in ("GET", "HEAD") and record["status"] == status
