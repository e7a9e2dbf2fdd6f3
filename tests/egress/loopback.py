"""A bare TCP server on 127.0.0.1 for tests that write an origin's bytes by hand."""

from __future__ import annotations

import socket
import threading


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
