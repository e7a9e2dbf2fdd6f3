"""What the test servers on loopback share: a server run in a thread, a quiet HTTP/1.1 handler
that reads a request's body whatever its framing, and git's own smart HTTP server (``git
http-backend``, a CGI program) run for one request."""

from __future__ import annotations

import os
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

Server = TypeVar("Server", bound=socketserver.BaseServer)


@contextmanager
def in_thread(server: Server) -> Iterator[Server]:
    """Serve ``server`` in a thread until the block ends, then shut it and close it."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Handler(BaseHTTPRequestHandler):
    """An HTTP/1.1 handler (keep-alive) that logs nothing."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def read_body(self) -> bytes:
        """The request's body: chunked (trailers read and dropped) or ``Content-Length`` bytes."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send ``status``, ``headers`` and ``body`` with its ``Content-Length``."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def git_backend(self, root: Path, body: bytes, **environ: str) -> None:
        """Answer this request with ``git http-backend`` serving the repositories under ``root``;
        ``environ`` adds CGI variables (``REMOTE_USER``, ``GIT_PROTOCOL``)."""
        url = urlsplit(self.path)
        variables = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "REMOTE_ADDR": self.client_address[0],
            **environ,
        }
        done = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=variables,
            capture_output=True,
            timeout=60,
            check=False,
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.answer(status, headers, payload)
