"""Servers for the ``airlock run`` tests: a web site and git's own http-backend, on 127.0.0.2.

They listen on 127.0.0.2, a loopback address of the host that is not the sandbox's
``NO_PROXY`` (``localhost,127.0.0.1,::1``), so every client inside reaches them through the
proxy as it would a real host, and the tests allow them explicitly (``--allow
127.0.0.2:PORT``), as a user allows an intranet host. ``GitServer`` runs ``git
http-backend`` (git's smart HTTP server, a CGI program) for each request.
"""

from __future__ import annotations

import socket
from contextlib import AbstractContextManager
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.serving import Handler, in_thread

HOST = "127.0.0.2"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str]
    git_root: Path | None = None


class _Handler(Handler):
    server: _Server

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.read_body())

    def _handle(self, body: bytes) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        if self.server.git_root is not None:
            protocol = self.headers.get("Git-Protocol", "")
            self.git_backend(self.server.git_root, body, GIT_PROTOCOL=protocol)
        else:
            page = f"hello from the origin: {self.command} {self.path}\n".encode()
            self.answer(200, [("Content-Type", "text/plain")], page + body)


class _Server6(_Server):
    address_family = socket.AF_INET6


def web_site_v6() -> AbstractContextManager[_Server]:
    """The same site on the host's IPv6 loopback, ``::1`` (the sandbox's own ``::1`` is not it:
    a client inside reaches this one only through the proxy)."""
    server = _Server6(("::1", 0), _Handler)
    server.seen = []
    return in_thread(server)


def _serving(git_root: Path | None) -> AbstractContextManager[_Server]:
    server = _Server((HOST, 0), _Handler)
    server.seen = []
    server.git_root = git_root
    return in_thread(server)


def web_site() -> AbstractContextManager[_Server]:
    """A site on 127.0.0.2 (``.server_address[1]`` its port) answering every path with a line."""
    return _serving(None)


def git_server(root: Path) -> AbstractContextManager[_Server]:
    """git's smart HTTP server for the repositories under ``root``, on 127.0.0.2."""
    return _serving(root)
