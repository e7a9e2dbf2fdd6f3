"""An upstream proxy on loopback that answers every ``CONNECT`` ``502``: chained to by
``airlock run --upstream-proxy``, it shows which tunnels the run let through (its
``asked``), and nothing goes further than the machine."""

from __future__ import annotations

import socketserver
from collections.abc import Iterator
from contextlib import contextmanager

from tests.serving import in_thread


class RefusingUpstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    asked: list[str]
    """The authority of each ``CONNECT`` it was asked for, in order."""


class _Refuse(socketserver.BaseRequestHandler):
    """Read a ``CONNECT``, note its authority, answer ``502``: nothing goes further."""

    server: RefusingUpstream

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        self.server.asked.append(head.split(b" ", 2)[1].decode())
        self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


@contextmanager
def refusing_upstream() -> Iterator[RefusingUpstream]:
    """The proxy, listening on 127.0.0.1 in a thread of its own while the block runs."""
    server = RefusingUpstream(("127.0.0.1", 0), _Refuse)
    server.asked = []
    with in_thread(server):
        yield server
