"""Inspected requests through the real proxy to origins that behave unlike the usual one: one
that answers without reading a body, one that streams its answer for longer than the idle
limit."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from pathlib import Path

from airlock.egress import Limits
from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA
from airlock.egress.forwarding import BODY_REQUEST
from tests.egress.harness import OriginHandler, OriginServer, inspected_setup, inspected_tls
from tests.egress.origin import config, running
from tests.serving import in_thread


class LazyHandler(OriginHandler):
    """``DELETE`` and ``OPTIONS`` answered without reading the body, the connection kept (as
    many servers do): a body left unread is read as the next request. Each request's
    ``Connection`` header is kept in ``server.connection_headers``."""

    def _lazy(self) -> None:
        self.server.seen.append((self.command, self.path, b"<body not read>"))
        self.server.connection_headers.append(self.headers.get("Connection"))  # type: ignore[attr-defined]
        answer = b'{"deleted": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _handle(self) -> None:
        self.server.connection_headers.append(self.headers.get("Connection"))  # type: ignore[attr-defined]
        super()._handle()

    do_DELETE = do_OPTIONS = _lazy
    do_GET = do_POST = do_PUT = do_HEAD = _handle


class StreamingHandler(OriginHandler):
    """``POST`` answered with a chunked event stream: ``TICKS`` pieces, ``GAP`` seconds
    apart."""

    TICKS = 12
    GAP = 0.4

    def do_POST(self) -> None:
        body = self.read_body()
        self.server.seen.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for tick in range(self.TICKS):
            data = b"data: tick %d\n\n" % tick
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
            self.wfile.flush()
            time.sleep(self.GAP)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class BrokenStreamHandler(OriginHandler):
    """``POST`` answered with a chunked stream that turns malformed after two pieces."""

    def do_POST(self) -> None:
        self.server.seen.append((self.command, self.path, self.read_body()))
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for tick in range(2):
            data = b"data: tick %d\n\n" % tick
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
        self.wfile.write(b"zz\r\nnot a chunk\r\n")
        self.wfile.flush()
        self.close_connection = True


def _origin(
    ca: RunCA, handler: type[OriginHandler]
) -> contextlib.AbstractContextManager[OriginServer]:
    """An HTTPS origin for ``localhost`` on 127.0.0.1 answering with ``handler``."""
    server = OriginServer(("127.0.0.1", 0), handler)
    server.seen = []
    server.framed = []
    server.answers = {}
    server.blob = b""
    server.connection_headers = []  # type: ignore[attr-defined]
    server.socket = ca.server_context("localhost").wrap_socket(server.socket, server_side=True)
    return in_thread(server)


def _answer(tls: ssl.SSLSocket) -> bytes:
    """One answer sized by its ``Content-Length``: head and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = tls.recv(65536)
        assert piece, data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        piece = tls.recv(65536)
        assert piece, data
        body += piece
    return head + b"\r\n\r\n" + body


def _smuggling(method: bytes, port: int) -> bytes:
    """A ``method`` request whose body, sized by its length, is a whole metrics batch."""
    inner = (
        b"POST /api/event_logging/v2/batch HTTP/1.1\r\nHost: localhost:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: 21\r\n\r\n"
        b'{"event":"smuggled!"}' % port
    )
    return (
        b"%b /v1/files/abc HTTP/1.1\r\nHost: localhost:%d\r\nContent-Length: %d\r\n\r\n"
        % (method, port, len(inner))
        + inner
    )


def test_a_body_that_is_a_request_never_reaches_an_origin_that_leaves_it_unread(
    tmp_path: Path,
) -> None:
    """Telemetry off; ``DELETE`` and ``OPTIONS`` carrying a metrics batch as their body, to
    an origin that answers them without reading it: refused ``400`` before any of it leaves
    (as plain forwarding refuses it), so the origin never reads the batch as a request."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    answers = []
    with _origin(origin_ca, LazyHandler) as site, running(cfg) as (url, _):
        port = site.server_address[1]
        for method in (b"DELETE", b"OPTIONS"):
            with inspected_tls(url, bundle, port) as tls:
                tls.sendall(_smuggling(method, port))
                answers.append(_answer(tls))
    assert all(answer.startswith(b"HTTP/1.1 400 ") for answer in answers), answers
    assert site.seen == []  # type: ignore[attr-defined]
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["method"], r["status"], r["decision"]) for r in records] == [
        ("DELETE", 400, "deny"),
        ("OPTIONS", 400, "deny"),
    ]
    assert all(r["reason"] == BODY_REQUEST for r in records)


def test_a_request_with_a_body_asks_the_origin_to_close_and_its_connection_is_not_reused(
    tmp_path: Path,
) -> None:
    """A ``DELETE`` with a body that is no request goes with ``Connection: close`` (the
    client's ``keep-alive`` replaced), and the next request on the client's connection goes
    on a new upstream connection: what the origin left unread is never read as a request."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    with _origin(origin_ca, LazyHandler) as site, running(cfg) as (url, _):
        port = site.server_address[1]
        with inspected_tls(url, bundle, port) as tls:
            tls.sendall(
                b"DELETE /v1/files/abc HTTP/1.1\r\nHost: localhost\r\n"
                b"Connection: keep-alive\r\nContent-Length: 7\r\n\r\nwhy=old"
            )
            first = _answer(tls)
            tls.sendall(b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n")
            second = _answer(tls)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 ")
    assert [(method, path) for method, path, _ in site.seen] == [  # type: ignore[attr-defined]
        ("DELETE", "/v1/files/abc"),
        ("GET", "/v1/models"),
    ]
    assert site.connection_headers == ["close", None]  # type: ignore[attr-defined]
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["method"], r["status"], r["error"]) for r in records] == [
        ("DELETE", 200, None),
        ("GET", 200, None),
    ]


def test_an_answer_streamed_past_the_idle_limit_is_not_cut(tmp_path: Path) -> None:
    """An event stream of about 5 s with a 1.5 s idle limit: each piece relayed is activity,
    so the stream reaches its end, and its record says the origin's ``200`` and every byte
    relayed."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection, limits=Limits(idle_seconds=1.5))
    stream = b""
    with (
        _origin(origin_ca, StreamingHandler) as site,
        running(cfg) as (url, _),
        inspected_tls(url, bundle, site.server_address[1]) as tls,
    ):
        tls.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )
        with contextlib.suppress(OSError):
            while piece := tls.recv(65536):
                stream += piece
    assert stream.startswith(b"HTTP/1.1 200 ")
    assert b"data: tick %d" % (StreamingHandler.TICKS - 1) in stream
    assert stream.endswith(b"0\r\n\r\n")
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["error"]) == (200, None)
    assert record["bytes_in"] == len(stream)


def test_an_answer_that_fails_part_way_keeps_its_status_and_bytes_in_the_record(
    tmp_path: Path,
) -> None:
    """The origin answers ``200`` and its chunked body turns malformed after two pieces: the
    client gets those pieces and no second answer after them, and the record says the
    origin's ``200``, the bytes relayed, and what failed."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    stream = b""
    with (
        _origin(origin_ca, BrokenStreamHandler) as site,
        running(cfg) as (url, _),
        inspected_tls(url, bundle, site.server_address[1]) as tls,
    ):
        tls.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        with contextlib.suppress(OSError):
            while piece := tls.recv(65536):
                stream += piece
    assert stream.startswith(b"HTTP/1.1 200 ") and b"data: tick 1" in stream
    assert stream.count(b"HTTP/1.1 ") == 1
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert record["status"] == 200
    assert record["bytes_in"] == len(stream)
    assert "chunk" in record["error"]


def test_a_path_servers_read_as_another_flow_is_not_recorded_as_the_model(
    tmp_path: Path,
) -> None:
    """Telemetry on: ``/v1/messagesX`` (no segment of the model's path) and
    ``/v1/messages/..;/../api/event_logging/v2/batch`` (the metrics batch to a server that
    reads ``..;`` as ``..``) go out, recorded as ``unclassified``, not as model requests;
    ``/v1/messages/count_tokens`` is one."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    paths = [
        b"/v1/messagesX",
        b"/v1/messages/..;/../api/event_logging/v2/batch",
        b"/v1/messages/count_tokens",
    ]
    with (
        _origin(origin_ca, OriginHandler) as site,
        running(cfg) as (url, _),
        inspected_tls(url, bundle, site.server_address[1]) as tls,
    ):
        for path in paths:
            tls.sendall(b"POST %b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n" % path)
            assert _answer(tls).startswith(b"HTTP/1.1 200 ")
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["path"], r["flow"]) for r in records] == [
        ("/v1/messagesX", "unclassified"),
        ("/v1/messages/..;/../api/event_logging/v2/batch", "unclassified"),
        ("/v1/messages/count_tokens", "model_requests"),
    ]


class ClosingHandler(OriginHandler):
    """``POST`` read whole, answered, then the connection shut at once, with no TLS
    close-notify (as many servers end a connection they were asked to close)."""

    def do_POST(self) -> None:
        body = self.read_body()
        self.server.seen.append((self.command, self.path, body))
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)  # FIN, no close-notify
        self.close_connection = True


def test_an_answer_before_the_origin_closes_reaches_the_client(tmp_path: Path) -> None:
    """Uploads sent with ``Connection: close`` to an origin that reads them, answers and shuts
    the connection before the proxy's last wait on its writes: each answer reaches the client
    (the wait raised "Connection lost", and the upload was answered 502)."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    cfg = config(tmp_path, inspection=inspection)
    body = b'{"text": "' + b"x" * 600_000 + b'"}'
    answers = []
    with _origin(origin_ca, ClosingHandler) as site, running(cfg) as (url, _):
        port = site.server_address[1]
        for _ in range(3):
            with inspected_tls(url, bundle, port) as tls:
                tls.sendall(
                    b"POST /api/event_logging/v2/batch HTTP/1.1\r\nHost: localhost:%d\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                    % (port, len(body), body)
                )
                answers.append(_answer(tls))
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers), answers
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["status"], r["error"]) for r in records] == [(200, None)] * 3
