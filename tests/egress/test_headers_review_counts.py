"""airlock's own answer after part of a request had left, counted in the audit record's
``bytes_in`` (what the client received) and its host's, on both paths, through the real
proxy: a chunked body found malformed part-way was answered ``400`` uncounted (plain HTTP
and inside inspected TLS), and so was the ``502`` for a malformed response (both paths)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit_read import read_records
from tests.egress.harness import inspected_setup, inspected_tls
from tests.egress.origin import assert_report_is_the_log, config, running
from tests.egress.test_framing_review_smuggling import raw_origin
from tests.egress.test_headers_review import STOPPED, _client, _read_all

CHUNKED_START = b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
"""A chunked body's good start, which leaves before the bad rest comes."""
BAD_REST = b"ZZ\r\nmore\r\n0\r\n\r\n"
"""A chunk size that is not hexadecimal."""
MALFORMED_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n"


def _exchange(
    tmp_path: Path, inspected: bool, request: bytes, rest: bytes, canned: bytes | None
) -> tuple[bytes, list[dict[str, Any]]]:
    """Send ``request`` (``{port}``: the origin's), then ``rest`` once it has gone upstream,
    to a raw origin (answering ``canned``, if given); the answer and the request records,
    the report checked against the log."""
    if inspected:
        origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
        cfg = config(tmp_path, inspection=inspection)
        tls = origin_ca.server_context("localhost")
    else:
        cfg, tls = config(tmp_path), None
    with raw_origin(tls, canned) as origin, running(cfg) as (url, proxy):
        sock: socket.socket
        sock = inspected_tls(url, bundle, origin.port) if inspected else _client(url)
        with sock:
            sock.sendall(request.replace(b"{port}", b"%d" % origin.port))
            time.sleep(0.3)  # the good start has gone upstream
            if rest:
                sock.sendall(rest)
            answer = _read_all(sock)
        time.sleep(0.1)
        report = proxy.close(STOPPED)
    assert cfg.audit_log is not None
    assert_report_is_the_log(report, cfg.audit_log)
    return answer, [r for r in read_records(cfg.audit_log) if r["type"] == "request"]


@pytest.mark.parametrize("inspected", [False, True], ids=["plain", "inspected"])
def test_headers_the_400_for_a_chunked_body_malformed_part_way_is_in_bytes_in(
    tmp_path: Path, inspected: bool
) -> None:
    """The body's first chunk went upstream, then a bad chunk size came: the client got a
    ``400``, and the record said ``bytes_in`` ``0`` (the host's count too)."""
    target = b"/v1/messages" if inspected else b"http://127.0.0.1:{port}/up"
    request = b"POST %s HTTP/1.1\r\nHost: localhost:{port}\r\n%s" % (target, CHUNKED_START)
    answer, records = _exchange(tmp_path, inspected, request, BAD_REST, None)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    [record] = records
    assert record["status"] == 400 and "cut upstream" in record["error"]
    assert record["bytes_out"] > 0
    assert record["bytes_in"] == len(answer)


@pytest.mark.parametrize("inspected", [False, True], ids=["plain", "inspected"])
def test_headers_the_502_for_a_malformed_answer_is_in_bytes_in(
    tmp_path: Path, inspected: bool
) -> None:
    """The request went out and the origin's answer was malformed (nothing of it passed
    on): the client got airlock's ``502``, and the record said ``bytes_in`` ``0``."""
    target = b"/v1/models" if inspected else b"http://127.0.0.1:{port}/x"
    request = b"GET %s HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n" % target
    answer, records = _exchange(tmp_path, inspected, request, b"", MALFORMED_ANSWER)
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:200]
    [record] = records
    assert record["status"] == 502
    assert record["bytes_in"] == len(answer)


def test_headers_an_http10_clients_bytes_in_are_what_it_received(tmp_path: Path) -> None:
    """Plain forwarding gives an HTTP/1.0 client a chunked answer decoded, under a head of
    its own; its record counted the origin's bytes (chunk framing, trailers, the head as the
    origin wrote it) as ``bytes_in``, not what reached the client."""
    canned = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Padding: "
        + b"p" * 200
        + b"\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    request = b"GET http://127.0.0.1:{port}/x HTTP/1.0\r\n\r\n"
    answer, records = _exchange(tmp_path, False, request, b"", canned)
    assert answer.startswith(b"HTTP/1.0 200 ") and answer.endswith(b"\r\n\r\nok"), answer
    [record] = records
    assert (record["status"], record["bytes_in"]) == (200, len(answer))
