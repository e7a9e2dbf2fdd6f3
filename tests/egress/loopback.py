"""Bare servers on loopback for tests that write an origin's bytes by hand."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class LoopbackServer:
    """Listens on a port of its own on 127.0.0.1 and hands each connection to :meth:`serve`,
    in a thread of its own (or in turn, with ``one_at_a_time``), until :meth:`close`. A
    subclass sets what :meth:`serve` uses before calling ``__init__``: connections may come
    as soon as it returns."""

    one_at_a_time = False

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self.one_at_a_time:
                self.serve(conn)
            else:
                threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def tls_answering_ok(
    context: ssl.SSLContext, bind: str = "127.0.0.1"
) -> Iterator[tuple[int, list[bytes]]]:
    """A TLS server with ``context`` on ``bind`` (a port of its own) that answers each
    connection's first read with ``ok`` and closes it: its port, and what each connection
    that got through its handshake sent."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    listener = socket.create_server((bind, 0), family=family)
    received: list[bytes] = []

    def run() -> None:
        with contextlib.suppress(OSError):
            while True:
                raw, _ = listener.accept()
                with contextlib.suppress(OSError), raw:
                    raw.settimeout(5)
                    with context.wrap_socket(raw, server_side=True) as tls:
                        received.append(tls.recv(65536))
                        tls.sendall(OK)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        listener.close()
        thread.join(5)
