"""Refusals on inspected hosts: what a request holds is quoted in none of them, an upgrade is
refused at once, a client waiting for ``100 Continue`` is not kept waiting, and a gathered
body is held in memory once."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA
from airlock.egress.inspect import InspectionConfig
from airlock.egress.scan import SecretsMode
from airlock.policy import decide
from tests.egress.harness import (
    Rig,
    established_tunnel,
    inspected_setup,
    inspected_tls,
    tls_origin,
    tunnel_ssl,
    until_closed,
)
from tests.egress.origin import config, origin, running
from tests.policy.helpers import context

PASSWORD = "Zq8!vLm2;rT9xW4p"
"""A password with punctuation in it: no run of token characters, no pattern finds it."""
TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
PLANTED = (PASSWORD, PASSWORD.lower(), "vLm2", TOKEN, TOKEN.lower())
"""What must appear nowhere: each planted value, and as a host name's reading lowers it."""


def _inside_tls(host: str) -> list[bytes]:
    """Requests inside inspected TLS to ``host`` (``localhost:PORT``), each refused, whose
    refusals used to quote what they hold: a first line, a ``Host`` header (user information,
    or any text), a target that is not this host's (a database URL, user information, a
    host that cannot be read), a ``Transfer-Encoding``, a path whose flow is off (metrics)."""
    at = host.encode()
    password = PASSWORD.encode()
    return [
        b"GET /x?password=" + password + b" HTTP/2.0\r\nHost: " + at + b"\r\n\r\n",
        b"GET /x/" + password + b" HTTP/2.0\r\nHost: " + at + b"\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: admin:" + password + b"@" + at + b"\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: " + password + b"\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: postgres://admin:" + password + b"@db.internal\r\n\r\n",
        b"GET postgres://admin:"
        + password
        + b"@db.internal/x HTTP/1.1\r\nHost: "
        + at
        + b"\r\n\r\n",
        b"GET ftp://u:" + password + b"@files.internal/y HTTP/1.1\r\nHost: " + at + b"\r\n\r\n",
        b"GET https://" + password + b".example/y HTTP/1.1\r\nHost: " + at + b"\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: "
        + at
        + b"\r\nTransfer-Encoding: "
        + password
        + b", chunked\r\n\r\n0\r\n\r\n",
        b"POST /api/event_logging/batch/"
        + TOKEN.encode()
        + b" HTTP/1.1\r\nHost: "
        + at
        + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    ]


def _in_the_clear(host: str) -> list[bytes]:
    """Requests in the clear inside a tunnel to ``host`` (not inspected), each refused, whose
    refusals used to quote the host they name: user information, any text, a target that
    cannot be read."""
    password = PASSWORD.encode()
    return [
        b"GET /x HTTP/1.1\r\nHost: admin:" + password + b"@" + host.encode() + b"\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: " + password + b"\r\n\r\n",
        b"GET http://" + password + b".example/y HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n",
    ]


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_what_a_request_holds_is_quoted_in_no_refusal(tmp_path: Path, mode: SecretsMode) -> None:
    """A password (punctuation in it), user information or a token in a refused request's
    first line, ``Host``, target, ``Transfer-Encoding`` or path (inspected TLS, plain HTTP
    to an inspected host, HTTP in the clear in a tunnel) appears in no answer, no audit
    record, not in the report nor its lines: the refusal says what was wrong without
    quoting it, or quotes the path as the log shows it. The log is hash-chained: what is
    written there can never be taken out."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=_with_secrets(inspection, mode))
    answers: list[bytes] = []
    with tls_origin(origin_ca, "localhost") as site, origin() as plain:
        port, plain_port = site.server_address[1], plain.server_address[1]
        with running(cfg) as (url, proxy):
            for request in _inside_tls(f"localhost:{port}"):
                with inspected_tls(url, bundle, port) as tls:
                    tls.sendall(request)
                    answers.append(until_closed(tls))
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
                sock.sendall(  # plain HTTP to the inspected host, its flow off
                    f"POST http://localhost:{plain_port}/api/event_logging/batch/{TOKEN} "
                    "HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".encode()
                )
                answers.append(until_closed(sock))
            for request in _in_the_clear(f"127.0.0.1:{plain_port}"):
                with established_tunnel(url, f"127.0.0.1:{plain_port}") as raw:
                    raw.sendall(request)
                    answers.append(until_closed(raw))
            report = proxy.close({"command": ["test"], "exit_code": 0})
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] in ("request", "tunnel")]
    refused = [r for r in records if r["decision"] == "deny"]
    assert len(refused) == len(records) == len(answers), records
    assert site.seen == [] and plain.seen == []
    for answer in answers[: len(_inside_tls("")) + 1]:
        assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")), answer[:80]
    said = {
        "answers": b"\n".join(answers).decode("latin-1"),
        "log": cfg.audit_log.read_text(),
        "report": json.dumps(report.to_json(), ensure_ascii=False),
        "lines": "\n".join(report.lines()),
    }
    for where, text in said.items():
        for planted in PLANTED:
            assert planted not in text, (where, planted, text)
    assert "malformed first line" in said["log"] and "HTTP/2.0" in said["log"]
    assert "user information (user:password@)" in said["log"]


def _with_secrets(inspection: InspectionConfig, mode: SecretsMode) -> InspectionConfig:
    import dataclasses

    return dataclasses.replace(inspection, secrets=mode)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """An inspector (metrics off) in front of a TLS origin for ``localhost``."""
    made = Rig(
        tmp_path, decide(context({"DISABLE_TELEMETRY": "1"})), SecretsMode.REPORT, {"localhost"}
    )
    with tls_origin(made.origin_ca, "localhost") as site:
        made.origin = site  # type: ignore[attr-defined]
        made.origin_port = site.server_address[1]  # type: ignore[attr-defined]
        with made.front:
            yield made


@pytest.mark.parametrize("upgrade", ["websocket", "h2c"])
def test_an_upgrade_to_an_inspected_host_is_refused_at_once(rig: Rig, upgrade: str) -> None:
    """A request to switch protocols (a WebSocket's) gets ``501`` at once, saying that what
    follows cannot be inspected and that without ``--inspect`` it would go as an opaque
    tunnel; nothing reaches the origin (its ``101`` passed on left the client's frames
    unread and the connection hung); the record says so."""
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with tls:
        tls.sendall(
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: %s\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % upgrade.encode()
        )
        answer = until_closed(tls)
    assert answer.startswith(b"HTTP/1.1 501 "), answer[:80]
    assert b"--inspect localhost" in answer and b"opaque tunnel" in answer
    assert rig.origin.seen == []  # type: ignore[attr-defined]
    [record] = rig.wait_records(1)
    assert (record["status"], record["decision"], record["path"]) == (501, "deny", "/ws")
    assert "switch protocols" in record["reason"] and "--inspect localhost" in record["reason"]


def test_a_client_waiting_for_100_continue_is_refused_at_once(rig: Rig) -> None:
    """A request whose flow is off that waits for ``100 Continue`` before its body is
    answered ``403`` at once, and the connection closed (its body is never read), rather
    than left waiting for a body it will not send until told to."""
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with tls:
        tls.settimeout(5)
        started = time.monotonic()
        tls.sendall(
            b"POST /api/event_logging/batch HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = until_closed(tls)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert b"Connection: close" in answer and b"DISABLE_TELEMETRY" in answer
    assert took < 3, took
    [record] = rig.wait_records(1)
    assert (record["status"], record["decision"], record["flow"]) == (403, "deny", "metrics")
    assert record["duration_ms"] < 3000


class _Sink:
    """A TLS origin for ``localhost`` that reads each request's body and drops it (an origin
    that kept it would hold memory of its own), then answers ``200``."""

    def __init__(self, ca: RunCA) -> None:
        self.context = ca.server_context("localhost")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    self._one(tls)

    def _one(self, tls: ssl.SSLSocket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += tls.recv(1)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        left = length
        while left and (piece := tls.recv(min(left, 1 << 16))):
            left -= len(piece)
        self.received.append(length - left)
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def __enter__(self) -> _Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_a_gathered_body_is_held_in_memory_once(tmp_path: Path, mode: SecretsMode) -> None:
    """Under ``redact`` and ``block`` a body is gathered whole before it leaves, within a
    budget that counts it once: it is held once (not its pieces and their joined copy at
    once), and it leaves a piece at a time (not whole into TLS, which would hold an
    encrypted copy beside it). What Python allocates meanwhile, in all, stays well under
    twice the body."""
    size = 24 << 20
    made = Rig(tmp_path, decide(context({})), mode, {"localhost"})
    body = b"".join(b"line %08d of a large upload, plain text\n" % n for n in range(size // 48))
    with _Sink(made.origin_ca) as sink, made.front:
        made.origin_port = sink.port  # type: ignore[attr-defined]
        tls, _ = tunnel_ssl(made, "localhost", made.bundle)
        with tls:
            tls.settimeout(60)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                tls.sendall(
                    b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n" % len(body)
                )
                tls.sendall(body)
                answer = until_closed(tls)
                made.wait_records(1)
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert sink.received == [len(body)]
    assert peak < 1.5 * len(body), f"{peak / len(body):.2f} times the body"
