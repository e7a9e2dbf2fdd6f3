"""HTTP/1.1 framing through the real proxy, second smuggling review (issue 13; issue 16 for
inspection): each test sends raw bytes on loopback to the proxy and reads what a raw origin
got, as ``test_framing_review_smuggling`` does, and failed before its fix.

- plain HTTP: a ``GET`` or ``HEAD`` with a body and ``Expect: 100-continue`` went unanswered
  until the idle limit; an answer to ``HEAD`` that said ``Transfer-Encoding: chunked`` passed
  its last chunk (``0\\r\\n\\r\\n``) on, read by the client as the start of its next answer; a
  response framed by a ``Transfer-Encoding`` that does not end in ``chunked`` was relayed
  whole and recorded as a ``502`` cut short;
- inside inspected TLS: a ``Connection`` header naming a framing header went upstream as it
  came, an HTTP/1.1 request without ``Host`` was forwarded, ``GET *`` was forwarded, and an
  absolute-form target reached the origin in absolute form;
- the git gateway's ``404`` was answered ``404 Error``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.config import GATEWAY_HOST
from airlock.egress.gateway import GatewayConfig, RepoGrant, load_token
from tests.egress.codehost import TOKEN
from tests.egress.harness import inspected_setup
from tests.egress.loopback import LoopbackServer
from tests.egress.origin import config, running
from tests.egress.test_framing_review_smuggling import _inspected
from tests.egress.test_gateway import gateway_running

WAIT = 4.0
"""Seconds a client waits for its answer: far below the proxy's idle limit (30 s in these
tests, 300 s by default), which is all that ended a request the proxy waited on."""


class CannedOrigin(LoopbackServer):
    """An origin on 127.0.0.1 that reads each connection's request head and answers it with
    ``canned`` bytes, written at once, then closes (its close ends a body framed by it);
    ``heads`` keeps what it read. One connection at a time."""

    one_at_a_time = True

    def __init__(self, canned: bytes) -> None:
        self.canned = canned
        self.heads: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(WAIT)
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head and (piece := conn.recv(65536)):
                    head += piece
                self.heads.append(head)
                conn.sendall(self.canned)


@contextlib.contextmanager
def canned_origin(canned: bytes) -> Iterator[CannedOrigin]:
    origin = CannedOrigin(canned)
    try:
        yield origin
    finally:
        origin.close()


def _exchange(url: str, data: bytes) -> tuple[bytes, float]:
    """Send ``data`` to the proxy at ``url``; what came back until it closed (or ``WAIT``
    seconds passed without a byte), and how long that took."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(data)
        with contextlib.suppress(OSError):
            while piece := sock.recv(65536):
                answer += piece
    return answer, time.monotonic() - started


def _requests(log: Path | None) -> list[dict[str, Any]]:
    assert log is not None
    return [r for r in read_records(log) if r["type"] == "request"]


# P1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
@pytest.mark.parametrize("framing", [b"Content-Length: 10", b"Transfer-Encoding: chunked"])
@pytest.mark.parametrize("inspected", [False, True], ids=["plain", "plain_inspected"])
def test_a_body_on_get_waiting_for_100_continue_is_refused_at_once(
    tmp_path: Path, method: bytes, framing: bytes, inspected: bool
) -> None:
    """The client sends its body only after ``100 Continue``; the refusal waited to read that
    body first, so the client had no answer until the idle limit. Now it is answered ``400``
    at once and the connection closed, the body never read (as inside TLS)."""
    changes: dict[str, Any] = {}
    host = b"127.0.0.1"
    if inspected:  # plain HTTP to an inspected host: the refusal goes through inspection
        changes["inspection"] = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})[2]
        host = b"localhost"
    cfg = config(tmp_path, **changes)
    with canned_origin(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as origin:
        with running(cfg) as (url, _):
            data = (
                method
                + b" http://%s:%d/v1/models HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                % (host, origin.port)
                + framing
                + b"\r\n\r\n"
            )
            answer, took = _exchange(url, data)
        assert origin.heads == []
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"a body on a " + method in answer
    assert b"100 Continue" not in answer
    assert took < WAIT - 1
    [record] = _requests(cfg.audit_log)
    assert (record["status"], record["decision"]) == (400, "deny")


# P2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_the_last_chunk_after_an_answer_to_head_is_not_passed_on(
    tmp_path: Path, version: bytes
) -> None:
    """An answer to ``HEAD`` has no body; a destination that says ``Transfer-Encoding:
    chunked`` and then sends a last chunk (``0\\r\\n\\r\\n``, no body byte in it) had that
    chunk passed on after the head, where a kept-alive client reads it as the start of the
    answer to its next request. It is now bytes no request asked for (as body bytes after
    a ``HEAD`` answer were): the response fails ``502``, none of it passed on; the same for
    an HTTP/1.0 client."""
    cfg = config(tmp_path)
    canned = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    with canned_origin(canned) as origin, running(cfg) as (url, _):
        head = b"HEAD http://127.0.0.1:%d/x HTTP/%s\r\nHost: x\r\n\r\n" % (origin.port, version)
        answer, _ = _exchange(url, head)
    assert b"0\r\n\r\n" not in answer, answer
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:200]
    [record] = _requests(cfg.audit_log)
    assert record["status"] == 502
    assert "sent more after its response" in record["error"]


# P4 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "coding",
    [b"identity", b"chunked, gzip", b"chunked\r\nTransfer-Encoding: gzip", b"chunked ,"],
    ids=["identity", "chunked_then_gzip", "gzip_on_a_second_line", "an_empty_last_coding"],
)
@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_a_body_framed_by_a_coding_not_ending_in_chunked_is_refused_502_unsent(
    tmp_path: Path, coding: bytes, version: bytes
) -> None:
    """RFC 9112 §6.3 ends such a body at the close, but clients read it apart (one that takes
    ``chunked, gzip`` for chunked ends it early and reads the rest as its next answer). It
    was relayed whole while the record said ``502`` (the close taken for a response cut
    short). Now it is refused ``502`` before any of it passes, the reason named, as inside
    inspected TLS and as nginx does."""
    cfg = config(tmp_path)
    canned = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\nSMUGGLED body"
    with canned_origin(canned) as origin, running(cfg) as (url, _):
        data = b"GET http://127.0.0.1:%d/x HTTP/%s\r\nHost: x\r\n\r\n" % (origin.port, version)
        answer, _ = _exchange(url, data)
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:200]
    assert b"SMUGGLED" not in answer
    assert b"whose last coding is not chunked" in answer
    [record] = _requests(cfg.audit_log)
    assert record["status"] == 502
    assert "whose last coding is not chunked" in record["error"]
    assert "mid-response" not in record["error"]


# P3 ---------------------------------------------------------------------------------------


LENGTH_BODY = b"Content-Length: 3\r\n\r\nabc"
CHUNKED_BODY = b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "connection", "rest", "sent"),
    [
        pytest.param(b"POST", b"Content-Length", LENGTH_BODY, b"close", id="content_length"),
        pytest.param(b"POST", b"Transfer-Encoding", CHUNKED_BODY, b"close", id="transfer_encoding"),
        pytest.param(b"POST", b"close, Host", LENGTH_BODY, b"close", id="host_with_a_body"),
        pytest.param(
            b"POST", b"close, TE, Trailer, X-Hop", LENGTH_BODY, b"close, x-hop", id="others_kept"
        ),
        pytest.param(b"GET", b"keep-alive, Host", b"\r\n", b"keep-alive", id="host_without"),
        pytest.param(b"GET", b"Content-Length", b"\r\n", None, id="content_length_alone"),
    ],
)
def test_connection_goes_on_without_options_naming_framing_headers_inside_tls(
    tmp_path: Path, method: bytes, connection: bytes, rest: bytes, sent: bytes | None
) -> None:
    """A next hop that honours ``Connection`` (RFC 9110 §7.6.1) drops each header it names:
    ``Connection: Content-Length`` went upstream as ``Connection: close, content-length``
    beside ``Content-Length: 3``, and one dropping it reads the body as a request of its own;
    ``Host`` alike (routed by another name). Those options are now left out, as plain
    forwarding sends none; options naming the client's own headers stay."""
    data = b"%s /v1/messages HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: %s\r\n%s" % (
        method,
        connection,
        rest,
    )
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    [raw] = origin.raw
    head = bytes(raw).split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    lines = [line for line in head if line.lower().startswith(b"connection:")]
    assert lines == ([b"Connection: " + sent] if sent is not None else []), head
    assert [r["status"] for r in records] == [200]


# P5 ---------------------------------------------------------------------------------------


def test_an_http11_request_without_host_inside_tls_is_refused_400(tmp_path: Path) -> None:
    """RFC 9112 §3.2: a server answers ``400`` to an HTTP/1.1 request without ``Host``; it
    was forwarded without one (a front end picks a host of its own for it). Refused, said,
    recorded, and nothing reaches the origin."""
    data = b"GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n"
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
    assert b"no Host header in an HTTP/1.1 request" in answer
    assert origin.raw == []
    [record] = records
    assert (record["status"], record["decision"]) == (400, "deny")
    assert "no Host header" in record["reason"]


# P6 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [b"GET", b"POST", b"DELETE"])
def test_an_asterisk_target_outside_options_inside_tls_is_refused_400(
    tmp_path: Path, method: bytes
) -> None:
    """``*`` is the target of ``OPTIONS`` alone (RFC 9112 §3.2.4); ``GET *`` was forwarded,
    for the origin to read as it likes, judged by a path ``*`` no flow names."""
    data = b"%s * HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 0\r\n\r\n" % method
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"for OPTIONS alone" in answer
    assert origin.raw == []
    [record] = records
    assert (record["status"], record["decision"]) == (400, "deny")


@pytest.mark.parametrize(
    ("target", "path"),
    [
        pytest.param(b"https://localhost:{port}/v1/models?a=1", "/v1/models?a=1", id="a_path"),
        pytest.param(b"https://LOCALHOST:{port}", "/", id="no_path"),
        pytest.param(b"https://localhost:{port}?/v1/x", "/?/v1/x", id="a_query_alone"),
    ],
)
def test_an_absolute_form_target_inside_tls_goes_on_as_the_path_judged(
    tmp_path: Path, target: bytes, path: str
) -> None:
    """The flows judge the path of an absolute-form target; the target itself went to the
    origin, which reads its own URL as it likes (another path, another host behind a front
    end). The origin now gets the path judged, in origin form."""
    data = b"GET %s HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n" % target
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert [target for _, target, _ in origin.requests] == [path]
    assert bytes(origin.raw[0]).startswith(b"GET %s HTTP/1.1\r\n" % path.encode())
    assert [r["status"] for r in records] == [200]


def test_an_http10_absolute_form_target_without_host_gets_the_host_it_named(
    tmp_path: Path,
) -> None:
    """HTTP/1.0 needs no ``Host``; sent on in origin form, such a request keeps the name its
    URL gave as its ``Host``."""
    data = b"GET https://localhost:{port}/v1/models HTTP/1.0\r\n\r\n"
    answer, origin, records = _inspected(tmp_path, data)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    [raw] = origin.raw
    port = origin.port
    assert bytes(raw).startswith(b"GET /v1/models HTTP/1.0\r\n"), bytes(raw)
    assert b"\r\nHost: localhost:%d\r\n" % port in bytes(raw)
    assert [r["status"] for r in records] == [200]


# REASONS ----------------------------------------------------------------------------------


def test_the_git_gateways_404_has_its_reason_phrase(tmp_path: Path) -> None:
    """The git gateway answers ``404`` to a path that is no git request: it went out as
    ``HTTP/1.1 404 Error``, the table of reasons having no ``404``."""
    gateway = GatewayConfig(
        (RepoGrant.parse("octo/allowed"),),
        load_token({"GH_TOKEN": TOKEN}),
        "http://127.0.0.1:9",  # never asked: the path is refused before
    )
    with gateway_running(gateway) as (_, address):
        cfg = config(tmp_path, gateway=address)
        with running(cfg) as (url, _):
            answer, _ = _exchange(
                url,
                f"GET http://{GATEWAY_HOST}/octo/allowed.git/objects/info/packs HTTP/1.1\r\n"
                f"Host: {GATEWAY_HOST}\r\nConnection: close\r\n\r\n".encode(),
            )
    assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n"), answer[:200]
