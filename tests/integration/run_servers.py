"""Servers for the ``airlock run`` tests: a web site and git's own http-backend, on 127.0.0.2.

They listen on 127.0.0.2, a loopback address of the host that is not the sandbox's
``NO_PROXY`` (``localhost,127.0.0.1,::1``), so every client inside reaches them through the
proxy as it would a real host, and the tests allow them explicitly (``--allow
127.0.0.2:PORT``), as a user allows an intranet host. ``GitServer`` runs ``git
http-backend`` (git's smart HTTP server, a CGI program) for each request.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.2"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str]
    git_root: Path | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self._body())

    def _handle(self, body: bytes) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        if self.server.git_root is not None:
            self._git(body)
        else:
            page = f"hello from the origin: {self.command} {self.path}\n".encode()
            self._answer(200, [("Content-Type", "text/plain")], page + body)

    def _git(self, body: bytes) -> None:
        url = urlsplit(self.path)
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": self.client_address[0],
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=environ, capture_output=True, timeout=60
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self._answer(status, headers, payload)


@contextmanager
def _serving(git_root: Path | None) -> Iterator[_Server]:
    server = _Server((HOST, 0), _Handler)
    server.seen = []
    server.git_root = git_root
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def web_site() -> Any:
    """A site on 127.0.0.2 (``.server_address[1]`` its port) answering every path with a line."""
    return _serving(None)


def git_server(root: Path) -> Any:
    """git's smart HTTP server for the repositories under ``root``, on 127.0.0.2."""
    return _serving(root)
