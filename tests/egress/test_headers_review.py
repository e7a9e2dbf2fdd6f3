"""Header handling through the real proxy, reviewed on both paths (plain HTTP forwarding and
inside inspected TLS), each test failing before its fix: raw bytes on loopback to the proxy,
and what a raw origin got or sent back.

- a request's ``Connection`` options, ``TE``, ``Keep-Alive`` and ``Proxy-*`` inside TLS went
  on to the origin (RFC 9110 §7.6.1: hop by hop); plain forwarding already left them out;
- an origin's hop-by-hop response headers (``Connection`` and what it names, ``Keep-Alive``,
  ``Proxy-Authenticate``, ``Proxy-Connection``, ``Upgrade``) reached the client on both
  paths, and its ``Connection: close`` told a client to close a connection airlock kept;
- a chunked answer went to an HTTP/1.0 client inside TLS, and an unasked ``101`` was passed on;
- the origin was sent the client's spelling of the host (``0x7f.1``, ``LOCALHOST.``), not the
  name the rules judged, dialled and named in TLS;
- airlock's own answer after part of a request had left (a chunked body malformed part-way,
  a malformed response) was not counted in the record's ``bytes_in``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA
from airlock.egress.config import EgressConfig
from airlock.egress.inspect import InspectionConfig
from tests.egress.harness import inspected_setup, inspected_tls
from tests.egress.loopback import LoopbackServer
from tests.egress.origin import config, running
from tests.egress.test_framing_review_smuggling import raw_origin

WAIT = 5.0
"""Seconds a client waits for the next byte: far below every idle limit in play."""
STOPPED = {"command": ["test"], "exit_code": 0}


class PiecesOrigin(LoopbackServer):
    """An origin on 127.0.0.1 (TLS when given a context) that reads each connection's request
    head and answers with ``pieces``, each written apart after a pause (so the proxy reads
    them apart), then reads on until the proxy closes; ``heads`` keeps what it read."""

    def __init__(self, pieces: list[bytes], tls: ssl.SSLContext | None = None) -> None:
        self.pieces = pieces
        self.tls = tls
        self.heads: list[bytes] = []
        super().__init__()

    def serve(self, raw: socket.socket) -> None:
        with contextlib.suppress(OSError), raw:
            raw.settimeout(WAIT)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = raw if self.tls is None else self.tls.wrap_socket(raw, server_side=True)
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        """Read a request head, answer it with the pieces, then read until the close."""
        head = b""
        while b"\r\n\r\n" not in head and (data := conn.recv(65536)):
            head += data
        self.heads.append(head)
        for piece in self.pieces:
            conn.sendall(piece)
            time.sleep(0.05)
        while conn.recv(65536):
            pass


@contextlib.contextmanager
def pieces_origin(pieces: list[bytes], tls: ssl.SSLContext | None = None) -> Iterator[PiecesOrigin]:
    origin = PiecesOrigin(pieces, tls)
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


def _read_answer(sock: socket.socket, ending: bytes) -> bytes:
    """What comes until it ends with ``ending`` (an answer on a kept connection)."""
    answer = b""
    sock.settimeout(WAIT)
    while not answer.endswith(ending):
        piece = sock.recv(65536)
        assert piece, answer
        answer += piece
    return answer


def _client(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=WAIT)


def _requests(cfg: EgressConfig) -> list[dict[str, Any]]:
    assert cfg.audit_log is not None
    return [r for r in read_records(cfg.audit_log) if r["type"] == "request"]


def _head_lines(message: bytes) -> list[bytes]:
    """A message's header lines (its first line left out)."""
    return message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]


def _names(message: bytes) -> list[bytes]:
    """A message's header names, lower-cased."""
    return [line.partition(b":")[0].lower() for line in _head_lines(message)]


def _setup(tmp_path: Path) -> tuple[RunCA, Path, InspectionConfig, EgressConfig]:
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    return origin_ca, bundle, inspection, config(tmp_path, inspection=inspection)


# The request: Connection and the hop-by-hop headers inside TLS --------------------------


CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "connection", "rest", "body"),
    [
        pytest.param(b"GET", b"close, X-Hop, Authorization", b"\r\n", b"", id="no_body"),
        pytest.param(
            b"POST",
            b"Transfer-Encoding, Content-Length, Host, X-Hop, Authorization",
            CHUNKED,
            b"abc",
            id="framing_and_host_named_too",
        ),
    ],
)
def test_headers_a_requests_connection_options_stay_on_its_hop_inside_tls(
    tmp_path: Path, method: bytes, connection: bytes, rest: bytes, body: bytes
) -> None:
    """Each header the client's ``Connection`` names (``X-Hop``, ``Authorization``), and
    ``TE``, ``Keep-Alive``, ``Proxy-*``, went on to the origin: a proxy removes them (RFC
    9110 §7.6.1), as plain forwarding does. One that routes or frames the request (``Host``,
    ``Transfer-Encoding``, ``Content-Length``) stays though named: the origin reads the host
    that was checked and the body's end airlock found (a server reached directly frames by
    it whatever ``Connection`` says)."""
    origin_ca, bundle, _, cfg = _setup(tmp_path)
    with raw_origin(origin_ca.server_context("localhost")) as origin:
        with running(cfg) as (url, _), inspected_tls(url, bundle, origin.port) as tls:
            tls.sendall(
                b"%s /v1/messages HTTP/1.1\r\nHost: localhost:%d\r\nConnection: %s\r\n"
                b"X-Hop: 1\r\nAuthorization: Bearer not-for-the-origin\r\nTE: trailers\r\n"
                b"Keep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nProxy-Other: x\r\n"
                b"X-Kept: k\r\n%s" % (method, origin.port, connection, rest)
            )
            answer = _read_all(tls)
        time.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    [raw] = origin.raw
    names = _names(bytes(raw))
    for gone in (b"x-hop", b"authorization", b"te", b"keep-alive"):
        assert gone not in names, raw
    assert not [name for name in names if name.startswith(b"proxy-")], raw
    assert b"x-kept" in names and b"Host: localhost:%d" % origin.port in _head_lines(bytes(raw))
    assert [(m, body) for m, _, body in origin.requests] == [(method.decode(), body)]
    assert [r["status"] for r in _requests(cfg)] == [200]


# The response: the origin's hop-by-hop headers ------------------------------------------


HOP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nConnection: X-Secret, Content-Length, keep-alive\r\nX-Secret: s\r\n"
    b'Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic realm="corp"\r\n'
    b"Proxy-Authentication-Info: x\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n"
    b"X-Kept: k\r\nContent-Length: 2\r\n\r\nok"
)
HOP_BY_HOP = (
    b"x-secret",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authentication-info",
    b"proxy-connection",
    b"upgrade",
)


def _answered(
    tmp_path: Path, inspected: bool, request: bytes, pieces: list[bytes]
) -> tuple[bytes, list[dict[str, Any]]]:
    """Send ``request`` (``{port}``: the origin's; a path for inspected TLS, else a URL's
    host and path) to a :class:`PiecesOrigin` answering ``pieces``; the client's answer
    (until the proxy closes) and the request records."""
    if inspected:
        origin_ca, bundle, _, cfg = _setup(tmp_path)
        with pieces_origin(pieces, origin_ca.server_context("localhost")) as origin:
            data = request.replace(b"{host}", b"").replace(b"{port}", b"%d" % origin.port)
            with running(cfg) as (url, _), inspected_tls(url, bundle, origin.port) as tls:
                tls.sendall(data)
                answer = _read_all(tls)
    else:
        cfg = config(tmp_path)
        with pieces_origin(pieces) as origin, running(cfg) as (url, _), _client(url) as sock:
            host = b"http://127.0.0.1:%d" % origin.port
            sock.sendall(request.replace(b"{host}", host).replace(b"{port}", b"%d" % origin.port))
            answer = _read_all(sock)
    return answer, _requests(cfg)


@pytest.mark.parametrize("inspected", [False, True], ids=["plain", "inspected"])
@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_headers_the_origins_hop_by_hop_response_headers_stay_on_its_hop(
    tmp_path: Path, inspected: bool, version: bytes
) -> None:
    """They reached the client as the origin sent them (the HTTP/1.0 client's rebuilt head
    kept ``Proxy-Authenticate`` and lost ``Content-Length`` to ``Connection``): a challenge
    for credentials the sandbox does not have, an upgrade it cannot make, ``keep-alive`` for
    a connection the client asked to close. Now they stay on the origin's hop; the header
    framing the body stays though ``Connection`` names it (the proxy found the body's end by
    it, and so must the client); the client gets airlock's ``Connection: close``."""
    closing = b"Connection: close\r\n" if version == b"1.1" else b""
    request = b"GET {host}/v1/models HTTP/%s\r\nHost: localhost:{port}\r\n%s\r\n" % (
        version,
        closing,
    )
    answer, records = _answered(tmp_path, inspected, request, [HOP_RESPONSE])
    assert answer.endswith(b"\r\n\r\nok"), answer
    names = _names(answer)
    assert not [name for name in HOP_BY_HOP if name in names], answer
    assert b"x-kept" in names and b"Content-Length: 2" in _head_lines(answer), answer
    assert [line for line in _head_lines(answer) if line.lower().startswith(b"connection:")] == [
        b"Connection: close"
    ], answer
    [record] = records
    assert (record["status"], record["bytes_in"]) == (200, len(answer))


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(
            [HOP_RESPONSE[:-5], HOP_RESPONSE[-5:-3], HOP_RESPONSE[-3:]], id="blank_line_split"
        ),
        pytest.param([HOP_RESPONSE[:40], HOP_RESPONSE[40:]], id="head_split"),
        pytest.param(
            [
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + HOP_RESPONSE[:-4],
                HOP_RESPONSE[-4:],
            ],
            id="interim_before_in_the_same_read",
        ),
        pytest.param(
            [b"HTTP/1.1 100 Continue\r\n\r\n", b"\r\n" + HOP_RESPONSE], id="interim_then_a_crlf"
        ),
    ],
)
def test_headers_a_response_head_read_in_pieces_is_rebuilt_whole(
    tmp_path: Path, pieces: list[bytes]
) -> None:
    """Plain forwarding passes a response's bytes as they come; its head is now rebuilt
    without the hop-by-hop headers wherever the reads cut it (its blank line split between
    two, after an interim answer in the same read or the one before), the rest untouched."""
    request = b"GET {host}/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer, records = _answered(tmp_path, False, request, pieces)
    assert answer.endswith(b"\r\n\r\nok"), answer
    final = answer[answer.index(b"HTTP/1.1 200") :]
    assert not [name for name in HOP_BY_HOP if name in _names(final)], answer
    assert b"X-Kept: k" in _head_lines(final) and b"Content-Length: 2" in _head_lines(final)
    [record] = records
    assert (record["status"], record["bytes_in"]) == (200, len(answer))


@pytest.mark.parametrize("inspected", [False, True], ids=["plain", "inspected"])
@pytest.mark.parametrize(
    ("canned", "said"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            [],
            id="origin_closes",
        ),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            [b"Connection: keep-alive"],
            id="http10_origin",
        ),
    ],
)
def test_headers_a_client_is_told_of_its_own_connection_not_the_origins(
    tmp_path: Path, inspected: bool, canned: bytes, said: list[bytes]
) -> None:
    """An origin that closes its connection after a sized answer (``Connection: close``, or
    an HTTP/1.0 answer without ``keep-alive``) told the client so, though airlock keeps the
    client's connection (and dials again for the next request): the client closed it. Now
    it hears of its own (``keep-alive`` beside an ``HTTP/1.0`` status line, which it would
    read as the end), and its next request on it is answered."""
    origin_ca, bundle, _, cfg = _setup(tmp_path)
    tls = origin_ca.server_context("localhost") if inspected else None
    with pieces_origin([canned], tls) as origin, running(cfg) as (url, _):
        target = b"/v1/models" if inspected else b"http://127.0.0.1:%d/x" % origin.port
        request = b"GET %s HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % (target, origin.port)
        with contextlib.ExitStack() as stack:
            if inspected:
                sock: Any = stack.enter_context(inspected_tls(url, bundle, origin.port))
            else:
                sock = stack.enter_context(_client(url))
            sock.sendall(request)
            first = _read_answer(sock, b"\r\n\r\nok")
            sock.sendall(request)
            second = _read_answer(sock, b"\r\n\r\nok")
    for answer in (first, second):
        lines = _head_lines(answer)
        assert [line for line in lines if line.lower().startswith(b"connection:")] == said
    assert len(origin.heads) == 2
    assert [r["status"] for r in _requests(cfg)] == [200, 200]


def test_headers_a_chunked_answer_reaches_an_http10_client_decoded_inside_tls(
    tmp_path: Path,
) -> None:
    """An HTTP/1.0 client cannot read chunked framing (RFC 9112 §6.1: none is sent to it);
    inside TLS it got the origin's chunks as they came. Now, as plain forwarding sends it,
    the body comes decoded, without ``Transfer-Encoding`` or ``Trailer``, ended by the
    connection's close."""
    canned = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
        b"2\r\nok\r\n3\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n"
    )
    request = b"GET /v1/models HTTP/1.0\r\nHost: localhost:{port}\r\n\r\n"
    answer, records = _answered(tmp_path, True, request, [canned])
    assert answer.endswith(b"\r\n\r\nok!!!"), answer
    names = _names(answer)
    assert b"transfer-encoding" not in names and b"trailer" not in names
    [record] = records
    assert (record["status"], record["bytes_in"]) == (200, len(answer))


def test_headers_an_unasked_101_inside_tls_is_refused_502(tmp_path: Path) -> None:
    """A request inside inspected TLS never asks to switch protocols (``Upgrade`` is refused
    ``501``); an origin's ``101`` was passed on, its ``Upgrade`` with it, and what followed
    it read as the next answer. Now it is a ``502`` (as in plain forwarding), none of it
    passed on."""
    canned = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"FRAMES"
    )
    request = b"GET /v1/models HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"
    answer, records = _answered(tmp_path, True, request, [canned])
    assert answer.startswith(b"HTTP/1.1 502 "), answer
    assert b"switched protocols (101)" in answer
    assert b"FRAMES" not in answer and b"websocket" not in answer
    [record] = records
    assert (record["status"], record["bytes_in"]) == (502, len(answer))


# The host the origin is told ----------------------------------------------------------


@pytest.mark.parametrize("spelling", [b"0x7f.1", b"LOCALHOST."])
def test_headers_a_plain_request_names_the_host_as_the_rules_read_it(
    tmp_path: Path, spelling: bytes
) -> None:
    """The rules judged, and airlock dialled, the URL's host as they read it (``127.0.0.1``,
    ``localhost``); the origin was told the client's spelling of it in ``Host``, a name a
    front end may route apart. Now it is told the name that was judged."""
    canonical = {b"0x7f.1": b"127.0.0.1", b"LOCALHOST.": b"localhost"}[spelling]
    cfg = config(tmp_path)
    with raw_origin() as origin, running(cfg) as (url, _), _client(url) as sock:
        sock.sendall(
            b"GET http://%s:%d/x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n"
            % (spelling, origin.port)
        )
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    [raw] = origin.raw
    hosts = [line for line in _head_lines(bytes(raw)) if line.lower().startswith(b"host:")]
    assert hosts == [b"Host: %s:%d" % (canonical, origin.port)]
    assert [r["host"] for r in _requests(cfg)] == [canonical.decode()]


@pytest.mark.parametrize("given", [b"LOCALHOST.:{port}", b"localhost"])
def test_headers_inside_tls_the_origin_is_told_the_host_its_tls_names(
    tmp_path: Path, given: bytes
) -> None:
    """A ``Host`` checked to name the connection's host and port went on as the client
    spelled it (``LOCALHOST.``, or without the port the connection goes to), beside TLS
    naming ``localhost``: a front end that compares them answers ``421``, one that routes
    by ``Host`` may read another name. Now the origin is told the name (and port) that was
    classified, allowed, dialled and named in TLS."""
    origin_ca, bundle, _, cfg = _setup(tmp_path)
    with raw_origin(origin_ca.server_context("localhost")) as origin:
        with running(cfg) as (url, _), inspected_tls(url, bundle, origin.port) as tls:
            host = given.replace(b"{port}", b"%d" % origin.port)
            tls.sendall(b"GET /v1/models HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host)
            answer = _read_all(tls)
        time.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    [raw] = origin.raw
    hosts = [line for line in _head_lines(bytes(raw)) if line.lower().startswith(b"host:")]
    assert hosts == [b"Host: localhost:%d" % origin.port]
