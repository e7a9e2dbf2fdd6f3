"""What a hostile destination's answer does through the real proxy (the response side's
review): each test has an origin on loopback write its bytes by hand, sends raw bytes to
the proxy and reads what came back, and failed before its fix.

- plain HTTP: a status below ``100`` (``HTTP/1.1 000``) was taken for an interim answer and
  passed on with the answer after it as one response, recorded with the second's status;
  Node's client (llhttp, as airlock) takes it for the final answer, with a body by its
  length, and a client that does reads the second answer, the destination's bytes, as the
  answer to its next request, maybe to another host.
- an HTTP/1.0 response with ``Transfer-Encoding: chunked`` (HTTP/1.0 has none: its framing
  is faulty) was passed on read as chunked, with ``Connection: keep-alive`` for the client
  (inside inspected TLS too), while Go's client ignores the header there and reads the body
  to a close that did not come. It is now refused ``502`` unsent, as such a request is.
- a chunked answer's trailer that did not end was gathered by httptools (a header line is
  gathered whole, in a copy each read grew) past any bound: memory without limit, and the
  copying, quadratic, held the event loop (every connection) for minutes. The trailers now
  pass on as they come, gathered by nothing.
- an answer that failed after its head went ended with the client's connection closed, as a
  whole answer ends: a body that ends at the close (no length; to an HTTP/1.0 client, every
  body, a chunked one decoded) looked whole, a part taken for the answer. An HTTP/1.0
  client's answer failed that way got a second one, airlock's ``502``, read as body bytes.
  Inside inspected TLS, an origin's connection that ended without ``close_notify`` ended
  such a body as a whole one, recorded without an error and closed to the client with a
  ``close_notify`` of airlock's. The client's connection is now cut (a reset).
- inside inspected TLS, bytes that came on the connection to the origin before its TLS began
  (an upstream proxy's after its ``200`` to the ``CONNECT``, or anyone's on the way) stayed
  in the stream ahead of what TLS carried, and were read and passed on as the origin's
  answer: an answer the origin's verified certificate never covered. Now no request goes on
  such a connection; the client is answered ``502``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.inspected import BEFORE_TLS, TRUNCATED
from tests.egress.harness import established_tunnel, inspected_setup, inspected_tls, until_closed
from tests.egress.loopback import LoopbackServer, tls_answering_ok
from tests.egress.origin import config, running
from tests.egress.test_framing_review_smuggling import _inspected
from tests.egress.test_framing_review_smuggling_second import (
    WAIT,
    _exchange,
    _requests,
    canned_origin,
)

FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nFORGED"
"""An answer a hostile destination writes after its first, for a request it never got."""


@pytest.mark.parametrize(
    "before", [b"", b"HTTP/1.1 100 Continue\r\n\r\n"], ids=["alone", "after_100"]
)
@pytest.mark.parametrize("status", [b"000", b"099"])
@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_a_status_below_100_is_refused_not_taken_for_an_interim_answer(
    tmp_path: Path, before: bytes, status: bytes, version: bytes
) -> None:
    canned = before + b"HTTP/1.1 " + status + b" X\r\nContent-Length: 3\r\n\r\nabc" + FORGED
    cfg = config(tmp_path)
    asked = b"GET http://127.0.0.1:%d/a HTTP/%s\r\nHost: 127.0.0.1\r\n\r\n"
    with (
        canned_origin(canned) as hostile,
        canned_origin(b"HTTP/1.1 200 OK\r\n\r\n") as other,
        running(cfg) as (url, _),
    ):
        data = asked % (hostile.port, version)
        if version == b"1.1":  # a next request on the same connection, to another host
            data += asked % (other.port, version)
        answer, _ = _exchange(url, data)
    assert b"FORGED" not in answer
    assert b" " + status + b" X" not in answer
    final = answer.split(b"HTTP/1.1 100 Continue\r\n\r\n")[-1]
    assert final.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert b"status " + status + b", below 100" in final
    assert b"\r\nConnection: close\r\n" in final
    assert other.heads == []  # the connection ended with the refusal
    [record] = _requests(cfg.audit_log)
    assert record["status"] == 502
    assert record["bytes_in"] == len(answer)
    assert "below 100" in str(record["error"])


HTTP10_CHUNKED = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
"""An HTTP/1.0 answer framed by chunks, which HTTP/1.0 does not have."""


def test_an_http10_response_with_transfer_encoding_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with canned_origin(HTTP10_CHUNKED) as origin, running(cfg) as (url, _):
        answer, _ = _exchange(url, b"GET http://127.0.0.1:%d/a HTTP/1.1\r\n\r\n" % origin.port)
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert b"HTTP/1.0 (or older) with Transfer-Encoding 'chunked'" in answer
    assert b"\r\n\r\n2\r\nok" not in answer
    [record] = _requests(cfg.audit_log)
    assert (record["status"], record["bytes_in"]) == (502, len(answer))


def test_inside_tls_an_http10_response_with_transfer_encoding_is_refused(tmp_path: Path) -> None:
    answer, _, records = _inspected(
        tmp_path, b"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n", canned=HTTP10_CHUNKED
    )
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert b"Transfer-Encoding in an HTTP/1.0 response: refused" in answer
    [record] = records
    assert (record["status"], record["bytes_in"]) == (502, len(answer))


TRAILER = 48 << 20
"""The length of a trailer line a hostile destination sends (48 MB)."""


class TrailingOrigin(LoopbackServer):
    """An origin on 127.0.0.1 that answers with a chunked body whose trailer line is
    :data:`TRAILER` bytes long, sent a megabyte at a time, then closes."""

    def serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(WAIT)
            head = b""
            while b"\r\n\r\n" not in head and (piece := conn.recv(65536)):
                head += piece
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: "
            )
            megabyte = b"a" * (1 << 20)
            for _ in range(TRAILER >> 20):
                conn.sendall(megabyte)
            conn.sendall(b"\r\n\r\n")
            with contextlib.suppress(OSError):
                conn.recv(1)  # until the proxy closes


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_a_trailer_that_does_not_end_is_not_gathered(tmp_path: Path, version: bytes) -> None:
    cfg = config(tmp_path)
    origin = TrailingOrigin()
    tracemalloc.start()
    try:
        with running(cfg) as (url, _):
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(
                    b"GET http://127.0.0.1:%d/a HTTP/%s\r\nConnection: close\r\n\r\n"
                    % (origin.port, version)
                )
                got = 0
                ending = b""
                while piece := sock.recv(1 << 20):  # counted, not kept
                    got += len(piece)
                    ending = (ending + piece)[-8:]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        origin.close()
    assert peak < 16 << 20, peak  # it was the trailer's length, twice over
    [record] = _requests(cfg.audit_log)
    assert (record["status"], record["error"], record["bytes_in"]) == (200, None, got)
    if version == b"1.1":  # passed on as it came
        assert got > TRAILER and ending.endswith(b"a\r\n\r\n")
    else:  # decoded: no trailers
        assert ending.endswith(b"ok")


class CuttingOrigin(LoopbackServer):
    """An origin on 127.0.0.1 (TLS when given a context) that reads a request head, writes
    ``part`` and, a moment later, ends the connection: with a reset (``reset``), or a close
    (under TLS: with ``close_notify`` when ``notify``, else without)."""

    def __init__(
        self,
        part: bytes,
        *,
        reset: bool = False,
        tls: ssl.SSLContext | None = None,
        notify: bool = False,
    ) -> None:
        self.part, self.reset, self.tls, self.notify = part, reset, tls, notify
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(WAIT)
            stream = self.tls.wrap_socket(conn, server_side=True) if self.tls else conn
            head = b""
            while b"\r\n\r\n" not in head and (piece := stream.recv(65536)):
                head += piece
            stream.sendall(self.part)
            time.sleep(0.2)  # the part reaches the client before the end
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif isinstance(stream, ssl.SSLSocket) and self.notify:
                stream.unwrap()
            stream.close()


@contextlib.contextmanager
def cutting_origin(part: bytes, **how: object) -> Iterator[CuttingOrigin]:
    origin = CuttingOrigin(part, **how)  # type: ignore[arg-type]
    try:
        yield origin
    finally:
        origin.close()


def _until_the_end(sock: socket.socket) -> tuple[bytes, str]:
    """What comes on ``sock`` and how it ended: ``closed`` (an end of file; under TLS, after
    ``close_notify``), ``cut`` (a reset; under TLS, an end without ``close_notify``), or
    ``waited`` (``WAIT`` seconds without a byte)."""
    answer = b""
    sock.settimeout(WAIT)
    try:
        while piece := sock.recv(65536):
            answer += piece
    except (ConnectionResetError, ssl.SSLEOFError):
        return answer, "cut"
    except TimeoutError:
        return answer, "waited"
    return answer, "closed"


PART = b"a part of the body"


@pytest.mark.parametrize(
    ("version", "part", "reset", "gets"),
    [
        (b"1.1", b"HTTP/1.1 200 OK\r\n\r\n" + PART, True, b"HTTP/1.1 200 OK\r\n\r\n" + PART),
        (
            b"1.1",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + PART,
            False,
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + PART,
        ),
        (
            b"1.0",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n12\r\n" + PART + b"\r\n",
            False,
            b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n" + PART,
        ),
    ],
    ids=["no_length_reset", "short_length_closed", "http10_decoded_chunks_closed"],
)
def test_an_answer_cut_short_after_its_head_cuts_the_clients_connection(
    tmp_path: Path, version: bytes, part: bytes, reset: bool, gets: bytes
) -> None:
    cfg = config(tmp_path)
    with cutting_origin(part, reset=reset) as origin, running(cfg) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
            sock.sendall(b"GET http://127.0.0.1:%d/a HTTP/%s\r\n\r\n" % (origin.port, version))
            answer, ended = _until_the_end(sock)
    assert (answer, ended) == (gets, "cut")  # the part, and no end that says it is whole
    [record] = _requests(cfg.audit_log)
    assert record["bytes_in"] == len(gets)
    assert "mid-response" in str(record["error"])


@pytest.mark.parametrize(
    ("notify", "version", "ended", "error"),
    [
        (False, b"1.1", "cut", TRUNCATED),
        (True, b"1.1", "closed", None),
        (False, b"1.0", "cut", TRUNCATED),
    ],
    ids=["without_close_notify", "with_close_notify", "http10_without_close_notify"],
)
def test_inside_tls_a_body_ending_at_the_close_needs_the_origins_close_notify(
    tmp_path: Path, notify: bool, version: bytes, ended: str, error: str | None
) -> None:
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    part = b"HTTP/1.1 200 OK\r\n\r\n" + PART
    tls = origin_ca.server_context("localhost")
    with cutting_origin(part, tls=tls, notify=notify) as origin, running(cfg) as (url, _):
        raw = established_tunnel(url, f"localhost:{origin.port}")
        context = ssl.create_default_context(cafile=str(bundle))
        with context.wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        ) as client:
            client.sendall(b"GET /a HTTP/%s\r\nHost: localhost\r\n\r\n" % version)
            answer, how = _until_the_end(client)
        time.sleep(0.05)  # the record is written as the connection ends
    assert answer.endswith(b"\r\n\r\n" + PART)
    assert how == ended
    [record] = _requests(cfg.audit_log)
    assert (record["status"], record["bytes_in"]) == (200, len(answer))
    if error is None:
        assert record["error"] is None
    else:
        assert error in str(record["error"])


class ForgingUpstreamProxy(LoopbackServer):
    """An upstream proxy on 127.0.0.1 that answers each ``CONNECT`` ``200`` with ``FORGED``
    in the same write (a cleartext answer, as if from the origin), then copies bytes both
    ways between the client and the origin asked for."""

    def serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(WAIT)
            head = b""
            while b"\r\n\r\n" not in head and (piece := conn.recv(1)):
                head += piece
            port = int(head.split(b" ")[1].rsplit(b":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as origin:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + FORGED)
                conn.settimeout(0.05)
                origin.settimeout(0.05)
                deadline = time.monotonic() + WAIT
                while time.monotonic() < deadline:  # both ways, until one side ends
                    for source, sink in ((conn, origin), (origin, conn)):
                        try:
                            data = source.recv(65536)
                        except TimeoutError:
                            continue
                        if not data:
                            return
                        sink.sendall(data)


class ForgingOrigin(LoopbackServer):
    """A TLS origin on 127.0.0.1 that writes ``FORGED`` in the clear as the connection
    opens, before its TLS handshake (anyone on the way could), then answers ``ok`` inside."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(WAIT)
            conn.sendall(FORGED)
            with self.tls.wrap_socket(conn, server_side=True) as stream:
                stream.recv(65536)
                stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.mark.parametrize("where", ["upstream_proxy", "origin"])
def test_inside_tls_bytes_from_before_the_origins_tls_are_not_its_answer(
    tmp_path: Path, where: str
) -> None:
    """An upstream proxy's bytes after its ``200`` were passed on as the origin's answer.
    Bytes written before the origin's handshake race it: they reach the stream (then the
    same forgery) or TLS (which fails); either way the client is now answered ``502``."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    context = origin_ca.server_context("localhost")
    with contextlib.ExitStack() as stack:
        if where == "upstream_proxy":
            port, received = stack.enter_context(tls_answering_ok(context))
            chained = stack.enter_context(contextlib.closing(ForgingUpstreamProxy()))
            upstream = {"upstream_proxy": f"http://127.0.0.1:{chained.port}", "no_proxy": ""}
        else:
            port = stack.enter_context(contextlib.closing(ForgingOrigin(context))).port
            received, upstream = [], {}
        cfg = config(tmp_path, inspection=inspection, **upstream)
        url, _ = stack.enter_context(running(cfg))
        with inspected_tls(url, bundle, port) as tls:
            tls.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = until_closed(tls)
        time.sleep(0.05)  # the record is written as the connection ends
    assert b"FORGED" not in answer
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert received == []  # no request went on that connection
    [record] = _requests(cfg.audit_log)
    assert record["status"] == 502
    if where == "upstream_proxy":  # the origin's, on the way, may also fail TLS itself
        assert BEFORE_TLS in str(record["error"])
