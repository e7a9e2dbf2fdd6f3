"""A real origin site and a running proxy on 127.0.0.1, for the egress tests.

``Origin`` answers HTTP/1.1 with keep-alive: ``/echo`` returns the request body (any
framing), ``/chunked?n=K`` answers K chunks, ``/close`` answers without a length and closes,
``/size?n=N`` answers N bytes, ``/interim`` answers ``100 Continue`` and ``103 Early Hints``
before its ``200``, ``/inject?kind=K`` answers (``sized``, ``chunked`` or ``204``; to ``HEAD``,
a head) and a second response no request asked for, in the same write, ``/headers`` the
request's header lines; anything else a short page naming the path and Host header.
``GET`` and ``OPTIONS`` leave a body unread, as many servers do (on a kept connection its
bytes are read as the next request).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airlock.egress import EgressConfig, Limits, ProxyReport, RunningProxy, start_proxy
from airlock.egress.audit_read import read_records
from airlock.egress.report import NO_HOST
from tests.serving import Handler, in_thread

INJECTED = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nINJECTED\n"
"""A response no request asked for, sent right after the one that was."""
ANSWERS = {
    "sized": b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfirst\n",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n0\r\n\r\n",
    "204": b"HTTP/1.1 204 No Content\r\n\r\n",
}


class _Handler(Handler):
    server: _Site

    def _query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}

    def _send(self, status: int, body: bytes, extra: str = "") -> None:
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n{extra}"
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)

    def do_HEAD(self) -> None:
        extra = INJECTED if self.path.startswith("/inject") else b""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" + extra)

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        route = urlsplit(self.path).path
        query = self._query()
        if route == "/chunked":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for index in range(int(query.get("n", "3"))):
                piece = b"piece %d;" % index
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif route == "/close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            self.close_connection = True
        elif route == "/size":
            self._send(200, b"z" * int(query.get("n", "10")))
        elif route == "/interim":
            self.wfile.write(
                b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
            )
        elif route == "/inject":
            self.wfile.write(ANSWERS[query.get("kind", "sized")] + INJECTED)  # in one write
        elif route == "/headers":
            self._send(200, bytes(self.headers))
        else:
            self._send(200, f"path={self.path} host={self.headers.get('Host')}".encode())

    def do_OPTIONS(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        self._send(200, b"", "Allow: GET, POST, OPTIONS\r\n")

    def do_POST(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        self._send(200, self.read_body())


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str]]


def origin() -> AbstractContextManager[_Site]:
    """The origin on 127.0.0.1 (port: ``.server_address[1]``), served in a thread."""
    site = _Site(("127.0.0.1", 0), _Handler)
    site.seen = []
    return in_thread(site)


class _Site6(_Site):
    address_family = socket.AF_INET6


def origin_v6() -> AbstractContextManager[_Site]:
    """The same origin on the IPv6 loopback, ``::1``."""
    site = _Site6(("::1", 0), _Handler)
    site.seen = []
    return in_thread(site)


def listener() -> socket.socket:
    """A TCP socket listening on 127.0.0.1, a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def config(tmp_path: Path, **changes: Any) -> EgressConfig:
    """Allow 127.0.0.1 explicitly (private addresses relaxed), deny evil.test; a log in tmp."""
    values: dict[str, Any] = {
        "allow": EgressConfig.rules(["127.0.0.1", "localhost"], "--allow"),
        "deny": EgressConfig.rules(["evil.test", "*.evil.test"], "--deny"),
        "allow_private": True,
        "audit_log": tmp_path / "audit" / "audit.jsonl",
        "heads_file": tmp_path / "heads" / "heads.jsonl",
        "flush_interval": 0.02,
        "limits": Limits(idle_seconds=30),
    }
    values.update(changes)
    return EgressConfig(**values)


@contextmanager
def running(cfg: EgressConfig) -> Iterator[tuple[str, RunningProxy]]:
    """The proxy serving ``cfg`` on 127.0.0.1; yields its URL and the handle."""
    sock = listener()
    port = sock.getsockname()[1]
    proxy = start_proxy(cfg, [sock])
    try:
        yield f"http://127.0.0.1:{port}", proxy
    finally:
        proxy.close({"command": ["test"], "exit_code": 0})


def exchange(proxy_url: str, data: bytes) -> bytes:
    """Send ``data`` on a new connection to the proxy; what came back until it closed (or
    reset the connection)."""
    host, port = proxy_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        with suppress(OSError):
            while piece := sock.recv(65536):
                answer += piece
    return answer


def assert_report_is_the_log(report: ProxyReport, log: Path) -> None:
    """The report's counts are the log's, host by host: bytes each way are the sums over its
    records, ``refused`` its records whose decision is deny, ``errors`` its allowed records
    with an error (a record with no host is counted as ``NO_HOST``)."""
    records = [r for r in read_records(log) if r["type"] in ("request", "tunnel")]
    hosts = {host.host: host for host in report.hosts}
    for name in {r["host"] or NO_HOST for r in records}:
        mine = [r for r in records if (r["host"] or NO_HOST) == name]
        host = hosts[name]
        assert (host.bytes_out, host.bytes_in) == (
            sum(r["bytes_out"] for r in mine),
            sum(r["bytes_in"] for r in mine),
        ), name
        denied = [r for r in mine if r["decision"] == "deny"]
        failed = [r for r in mine if r["decision"] == "allow" and r["error"]]
        assert sum(count for _, count in host.refused) == len(denied), name
        assert sum(count for _, count in host.errors) == len(failed), name
    assert report.refused == sum(r["decision"] == "deny" for r in records)
    assert report.errors == sum(r["decision"] == "allow" and bool(r["error"]) for r in records)


def until_failed(proxy: RunningProxy, url: str, port: int) -> None:
    """Send requests through ``proxy`` (at ``url``) to the origin on ``port`` until its audit
    log is found failed (each flush looks), at most 10 s."""
    import time

    import httpx

    deadline = time.monotonic() + 10
    with httpx.Client(proxy=url) as client:
        while proxy.failed is None and time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                client.get(f"http://127.0.0.1:{port}/during")
            time.sleep(0.05)
