"""Chaining to a corporate proxy (``--upstream-proxy``), reviewed with a real upstream proxy on
loopback that records what it receives: its credentials reach it and nothing else, a proxy
that asks for them, says nothing, or answers garbage gets a clear, bounded refusal in time,
and names that lead to a cloud metadata service do not reach it."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from airlock.egress import EgressConfig
from airlock.egress.audit_read import read_records
from airlock.egress.config import Limits, chosen_upstream, upstream_address
from airlock.errors import UsageError
from tests.cli import airlock
from tests.egress.origin import _Site, config, exchange, running
from tests.serving import in_thread

USER = "CORP\\build"
PASSWORD = "p@ss/w0rd:%"
QUOTED = "CORP%5Cbuild:p%40ss%2Fw0rd%3A%25"
"""``USER:PASSWORD`` percent-encoded, as a URL carries them."""
BASIC = b"Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode())


class RecordingUpstream(socketserver.ThreadingTCPServer):
    """An upstream proxy on 127.0.0.1 that keeps the head of every request it gets (``heads``)
    and then, by ``mode``: ``forward`` (a ``CONNECT`` is answered ``200`` and tunnelled, a
    request in absolute form is passed on, both to ``origin`` whatever name they give, once
    ``Proxy-Authorization`` is ``expected``, else ``407``), ``interim`` (as ``forward``, after
    a ``100 Continue``; ``interim apart``: 0.3 s after it), ``silent`` (says nothing until the test ends), ``garbage`` (100 KB
    that are no HTTP, then closes)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, mode: str, origin: tuple[str, int] = ("127.0.0.1", 9), expected: bytes | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Upstream)
        self.mode = mode
        self.origin = origin
        self.expected = expected
        self.heads: list[bytes] = []
        self.ended = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def authorizations(self) -> list[bytes | None]:
        """The ``Proxy-Authorization`` of each request, in order (``None``: none came)."""
        found: list[bytes | None] = []
        for head in self.heads:
            lines = [line.partition(b":") for line in head.split(b"\r\n")[1:]]
            found.append(
                next((v.strip() for k, _, v in lines if k.lower() == b"proxy-authorization"), None)
            )
        return found


class _Upstream(socketserver.BaseRequestHandler):
    server: RecordingUpstream

    def handle(self) -> None:
        sock: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            piece = sock.recv(65536)
            if not piece:
                return
            head += piece
        head, _, early = head.partition(b"\r\n\r\n")
        server = self.server
        server.heads.append(head)
        if server.mode == "silent":
            server.ended.wait(60)
            return
        if server.mode == "garbage":
            sock.sendall(b"\x00\xff\x1b[31m not http " * 5000 + b"\r\n\r\n")
            return
        if server.mode in ("interim", "interim apart"):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if server.mode == "interim apart":  # the final answer in a read of its own
                time.sleep(0.3)
        authorization = server.authorizations()[-1]
        if server.expected is not None and authorization != server.expected:
            sock.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            return
        with socket.create_connection(server.origin, timeout=10) as origin:
            if head.startswith(b"CONNECT "):
                sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:  # passed on as it came, as a proxy that keeps the absolute form would
                early = head + b"\r\n\r\n" + early
            origin.sendall(early)
            back = threading.Thread(target=_pump, args=(origin, sock), daemon=True)
            back.start()
            _pump(sock, origin)
            back.join(10)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while piece := source.recv(65536):
            sink.sendall(piece)
        sink.shutdown(socket.SHUT_WR)


@contextmanager
def recording_upstream(
    mode: str, origin: tuple[str, int] = ("127.0.0.1", 9), expected: bytes | None = None
) -> Iterator[RecordingUpstream]:
    server = RecordingUpstream(mode, origin, expected)
    with in_thread(server):
        try:
            yield server
        finally:
            server.ended.set()


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{QUOTED}@")


def _secret_forms() -> list[bytes]:
    """Every way the password could show: as given, percent-encoded, in the header."""
    return [PASSWORD.encode(), b"p%40ss", b"w0rd", BASIC.split()[1]]


def _connect(url: str, target: str, then: bytes = b"", timeout: float = 10) -> bytes:
    """A ``CONNECT target`` to the proxy at ``url``, then ``then`` in the tunnel; all that
    came back until the proxy closed (or ``timeout`` passed: what came by then)."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        if then:
            sock.sendall(then)
        with suppress(OSError):
            while piece := sock.recv(65536):
                answer += piece
    return answer


def test_the_upstream_proxys_credentials_reach_it_alone(site: _Site, tmp_path: Path) -> None:
    """``http://USER:PASSWORD@HOST:PORT``, percent-encoded: each ``CONNECT`` carries them,
    decoded, as ``Proxy-Authorization``; the tunnel then works. The audit log (its start
    record: the URL without them) and ``airlock audit --json`` hold no trace of them."""
    origin = ("127.0.0.1", int(site.server_address[1]))
    with recording_upstream("forward", origin, expected=BASIC) as upstream:
        allow = EgressConfig.rules(["origin.test"], "--allow")
        given = _with_credentials(upstream.url)
        cfg = config(tmp_path, allow=allow, upstream_proxy=given, no_proxy="")
        with running(cfg) as (url, _):
            inside = b"GET /through HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n"
            answer = _connect(url, "origin.test:443", inside)
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert answer.endswith(b"path=/through host=origin.test")
    assert upstream.heads[0].startswith(b"CONNECT origin.test:443 HTTP/1.1\r\n")
    assert upstream.authorizations() == [BASIC]
    log = cfg.audit_log
    assert log is not None
    (start,) = [r for r in read_records(log) if r["type"] == "start"]
    assert start["upstream_proxy"] == f"http://…@127.0.0.1:{upstream.server_address[1]}"
    shown = airlock("audit", "--json", "--audit-log", str(log))  # (its heads file is apart)
    assert '"upstream_proxy"' in shown.stdout, shown.stderr
    for text in (log.read_bytes(), shown.stdout.encode()):
        assert not [form for form in _secret_forms() if form in text]


@pytest.mark.parametrize("credentials", [False, True], ids=["none_given", "wrong_ones"])
def test_an_upstream_proxy_asking_for_credentials_is_told_apart(
    tmp_path: Path, credentials: bool
) -> None:
    """A ``407``: the ``502`` says the upstream proxy wants credentials and where they go
    (none given), or refused those given (never showing them)."""
    with recording_upstream("forward", expected=b"Basic other") as upstream:
        given = _with_credentials(upstream.url) if credentials else upstream.url
        cfg = config(tmp_path, allow_all=True, upstream_proxy=given, no_proxy="")
        with running(cfg) as (url, _):
            answer = _connect(url, "a.test:443")
    assert answer.startswith(b"HTTP/1.1 502 ")
    (record,) = [r for r in read_records(cfg.audit_log) if r["type"] == "tunnel"]  # type: ignore[arg-type]
    told_apart(answer, record["reason"], json.dumps(record).encode(), credentials)


def told_apart(answer: bytes, why: str, record: bytes, credentials: bool) -> None:
    """``answer`` (the client's) and ``why`` (the record's reason or error) say that the
    upstream proxy refused the credentials given, or where they go when none were; no form
    of the password is in the answer or in the ``record``."""
    if credentials:
        assert b"refused the credentials its URL gives (HTTP/1.1 407" in answer
        assert "refused the credentials" in why
    else:
        assert b"asks for credentials (HTTP/1.1 407" in answer
        assert b"http://USER:PASSWORD@HOST:PORT" in answer
        assert "asks for credentials" in why
    for text in (answer, record):
        assert not [form for form in _secret_forms() if form in text]


def test_an_upstream_proxy_that_never_answers_the_connect_is_given_up_on(tmp_path: Path) -> None:
    """It takes the connection and says nothing: the client is answered ``504`` once the
    connection limit passes, with its record then (not at the run's end), and its place (one
    of ``max_connections``, here 1) is freed for the next. The first was held, unanswered,
    until the run ended, and every later one turned away ``503``."""
    with recording_upstream("silent") as upstream:
        limits = Limits(idle_seconds=30, connect_timeout=1, max_connections=1)
        cfg = config(tmp_path, allow_all=True, upstream_proxy=upstream.url, limits=limits)
        with running(cfg) as (url, proxy):
            started = time.monotonic()
            answer = _connect(url, "a.test:443", timeout=8)
            took = time.monotonic() - started
            time.sleep(0.2)  # the first connection's end reaches the proxy
            second = _connect(url, "b.test:443", timeout=8)
            report = proxy.close({})
    assert answer.startswith(b"HTTP/1.1 504 "), answer
    assert b"did not answer the CONNECT to a.test:443 within 1 s" in answer
    assert took < 5
    assert second.startswith(b"HTTP/1.1 504 "), second
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "tunnel"]  # type: ignore[arg-type]
    assert [(r["host"], r["status"]) for r in records] == [("a.test", 504), ("b.test", 504)]
    assert all(r["duration_ms"] < 5000 for r in records)
    assert not report.connections_refused


def test_an_interim_answer_to_the_connect_is_passed_over(site: _Site, tmp_path: Path) -> None:
    """``100 Continue`` before the ``200``: the tunnel is made (it was refused as the answer)."""
    with recording_upstream("interim", ("127.0.0.1", int(site.server_address[1]))) as upstream:
        cfg = config(tmp_path, allow_all=True, upstream_proxy=upstream.url, no_proxy="")
        with running(cfg) as (url, _):
            inside = b"GET /after HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
            answer = _connect(url, "a.test:443", inside)
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert answer.endswith(b"path=/after host=a.test")


def test_an_upstream_proxys_garbage_is_shown_short_and_escaped(tmp_path: Path) -> None:
    """100 KB that are no HTTP, with NULs and a terminal's escape: the refusal says it is not
    HTTP, shows 200 characters of it at most, escaped, and so does the record."""
    with recording_upstream("garbage") as upstream:
        cfg = config(tmp_path, allow_all=True, upstream_proxy=upstream.url, no_proxy="")
        with running(cfg) as (url, _):
            answer = _connect(url, "a.test:443")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ")
    assert b"answered the CONNECT to a.test:443 with no HTTP status" in body
    assert len(body) < 2000 and b"\x00" not in answer and b"\x1b" not in answer
    (record,) = [r for r in read_records(cfg.audit_log) if r["type"] == "tunnel"]  # type: ignore[arg-type]
    assert len(record["reason"]) < 2000 and "\x00" not in record["reason"]


def test_names_of_metadata_services_do_not_reach_the_upstream_proxy(tmp_path: Path) -> None:
    """Through an upstream proxy, which resolves names itself, the names of cloud metadata
    services are refused (on a cloud machine the upstream proxy would reach the metadata
    service a direct connection is refused), as are addresses in any spelling and this
    machine's names, even with ``--allow-all``: none of them reaches the upstream proxy."""
    names = ["metadata.google.internal", "METADATA.Google.Internal.", "metadata", "instance-data"]
    spelled = ["localhost:22", "2130706433:22", "0x7f.1:22", "[::ffff:127.0.0.1]:22", "127.1:22"]
    spelled += ["169.254.169.254:80", "[::ffff:a9fe:a9fe]:80", "0:22", "[fd00:ec2::254]:80"]
    with recording_upstream("forward") as upstream:
        cfg = config(
            tmp_path, allow=(), allow_all=True, allow_private=False, upstream_proxy=upstream.url
        )
        with running(cfg) as (url, _):
            answers = {
                n: exchange(url, b"CONNECT %s:80 HTTP/1.1\r\n\r\n" % n.encode()) for n in names
            }
            answers |= {
                t: exchange(url, b"CONNECT %s HTTP/1.1\r\n\r\n" % t.encode()) for t in spelled
            }
    refused = {target for target, answer in answers.items() if answer.startswith(b"HTTP/1.1 403 ")}
    assert refused == set(answers)
    assert upstream.heads == []
    assert b"names a cloud metadata service" in answers["metadata"]
    assert b"never reached, whatever the rules" in answers["metadata"]


@pytest.mark.parametrize(
    "url",
    [
        f"http://{QUOTED}@proxy.corp:99999",
        f"https://{QUOTED}@proxy.corp:3128",
        f"socks5://{QUOTED}@proxy.corp:1080",
        f"http://{QUOTED}@proxy.corp:3128/path",
        f"{QUOTED}@[::1:3128",
        "http://CORP:p@ss/w0rd@proxy.corp:3128",  # unencoded: urllib reads 'p@ss' as a port
        "http://CORP:p@ss#w0rd@proxy.corp:3128",
    ],
)
def test_a_refused_upstream_url_is_shown_without_its_credentials(url: str) -> None:
    """Given or in airlock's ``HTTPS_PROXY``, an upstream proxy's URL that cannot be used is
    named in the error without its user and password."""
    for given, environ in ((url, {}), (None, {"HTTPS_PROXY": url})):
        with pytest.raises(UsageError) as refused:
            chosen_upstream(given, environ)
        message = str(refused.value)
        assert "…@" in message
        assert not [form for form in _secret_forms() if form.decode() in message]
        assert "CORP" not in message


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://proxy.corp:0", "port 0 is no port"),
        ("http://proxy corp:3128", "the host holds a space or a control character"),
        ("https://proxy.corp:3128", "a proxy reached over TLS (https://) is not supported"),
        ("socks5h://proxy.corp:1080", "a SOCKS proxy is not supported"),
        ("http://proxy.corp:3128?x=1", "expected http://HOST:PORT"),
        ("http://user%3Aname:pw@proxy.corp:3128", "the user name holds ':'"),
    ],
)
def test_an_upstream_url_that_cannot_be_used_says_why(url: str, said: str) -> None:
    """Port 0 was taken for 8080, a space in the host failed at the first connection, a
    query was dropped: each is refused before the run, saying why."""
    with pytest.raises(UsageError, match="--upstream-proxy") as refused:
        upstream_address(url)
    assert said in str(refused.value)


def test_an_ipv6_zone_in_an_upstream_url_is_read() -> None:
    """``http://[fe80::1%25eth0]:3128``: a URL spells the zone's ``%`` as ``%25``; the
    address dialled has ``%`` (``%25eth0`` names no interface)."""
    assert upstream_address("http://[fe80::1%25eth0]:3128") == ("fe80::1%eth0", 3128)


def test_an_ipv6_upstream_proxy_that_cannot_be_reached_is_named_in_brackets(
    tmp_path: Path,
) -> None:
    """``::1:9`` read as one address; ``[::1]:9`` is the proxy on port 9 (and so for an IPv6
    destination of a direct connection that fails)."""
    closed = socket.socket(socket.AF_INET6)
    closed.bind(("::1", 0))  # bound, never listening: a connection to it is refused
    port = closed.getsockname()[1]
    try:
        allow = EgressConfig.rules(["[::1]"], "--allow")
        chained = config(
            tmp_path / "chained", allow_all=True, upstream_proxy=f"http://[::1]:{port}", no_proxy=""
        )
        direct = config(tmp_path / "direct", allow=allow)
        with running(chained) as (url, _):
            through = _connect(url, "a.test:443")
        with running(direct) as (url, _):
            straight = _connect(url, f"[::1]:{port}")
    finally:
        closed.close()
    assert f"cannot connect to the upstream proxy [::1]:{port} (for a.test:443)".encode() in through
    assert f"cannot connect to [::1]:{port}:".encode() in straight
