"""Real servers on loopback for the tests: the collector app under uvicorn, and an origin site.

``ServedApp`` runs an ASGI app with uvicorn in a thread on 127.0.0.1 (a free port) and
records every request it receives (path and raw query), so tests assert what went on the
wire. ``OriginSite`` is a plain ``http.server`` site whose pages, redirects and slow or large
answers stand in for the web; every request's Host header is recorded.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from tests.serving import in_thread

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


@dataclass
class Recorder:
    """What an app received, and a switch to make it fail."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    fail_with: int | None = None
    delay: float = 0.0
    """Seconds to wait before answering: a slow service."""

    def queries(self, path: str) -> list[str]:
        return [query for seen_path, query in self.seen if seen_path == path]


def recording(app: ASGIApp, recorder: Recorder) -> ASGIApp:
    """Wrap ``app``: record each HTTP request; answer ``fail_with`` instead when it is set."""

    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            recorder.seen.append((scope["path"], scope["query_string"].decode("latin-1")))
            if recorder.delay:
                await asyncio.sleep(recorder.delay)
            if recorder.fail_with is not None:
                await send(
                    {"type": "http.response.start", "status": recorder.fail_with, "headers": []}
                )
                await send({"type": "http.response.body", "body": b"unavailable"})
                return
        await app(scope, receive, send)

    return wrapped


@contextmanager
def served(app: ASGIApp) -> Iterator[tuple[str, Recorder]]:
    """Serve ``app`` on 127.0.0.1 with uvicorn in a thread; yield its base URL and recorder."""
    recorder = Recorder()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        recording(app, recorder), log_level="error", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


PAGE = b"""<!doctype html><html><head><title>T</title><style>p{color:red}</style>
<script>var secret = 1;</script></head><body><h1>Hello airlock</h1>
<p>Some <b>bold</b> text and a <a href="https://example.test/x">link</a>.</p>
<ul><li>one</li><li>two</li></ul></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.hosts.append(self.headers.get("Host", ""))
        self.server.paths.append(self.path)
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        route = parts.path
        if route == "/page":
            self._send(200, "text/html; charset=utf-8", PAGE)
        elif route == "/text":
            self._send(200, "text/plain; charset=utf-8", "plain words ünïcode\n".encode())
        elif route == "/binary":
            self._send(200, "application/octet-stream", bytes(range(256)))
        elif route == "/big":
            self._send(200, "text/plain", b"x" * int(query.get("size", "1000")))
        elif route == "/redirect":
            self.send_response(int(query.get("code", "302")))
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/status":
            code = int(query.get("code", "500"))
            self._send(code, "text/html", b"<h1>Error page</h1><p>status %d</p>" % code)
        elif route == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"s")
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    hosts: list[str]
    paths: list[str]


def _site_in_thread(handler: type[BaseHTTPRequestHandler]) -> AbstractContextManager[_Site]:
    """A ``_Site`` answered by ``handler`` on 127.0.0.1 (a free port), served in a thread."""
    site = _Site(("127.0.0.1", 0), handler)
    site.hosts = []
    site.paths = []
    return in_thread(site)


def origin_site() -> AbstractContextManager[_Site]:
    """A web site on 127.0.0.1; ``.server_address[1]`` is its port; ``.hosts`` what it was asked for."""
    return _site_in_thread(_Handler)


class _ProxyHandler(BaseHTTPRequestHandler):
    """A forward HTTP proxy that answers itself: the domain-safety answer, or a small page."""

    server: _Site

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # absolute URL, as clients send to a proxy
        if "/api/web/domain_info" in self.path:
            body, kind = b'{"can_fetch": true}', "application/json"
        else:
            body, kind = b"through the proxy\n", "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def forward_proxy() -> AbstractContextManager[_Site]:
    """A corporate proxy stand-in on 127.0.0.1; ``.paths`` holds every request's absolute URL."""
    return _site_in_thread(_ProxyHandler)


@contextmanager
def airlock_serve(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``airlock serve ARGS… --port 0`` in a child process; yields its URL once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airlock", "serve", *args, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert found, line
        url = found.group(1)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "airlock serve did not answer"
                time.sleep(0.05)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
