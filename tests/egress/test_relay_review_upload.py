"""A destination that resets the connection while a request's body is still coming
(``forwarding._forward``): the request's record says the upstream write failed, not that the
client went away (it did not), and the client's connection is ended."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path

from airlock.egress.audit_read import read_records
from tests.egress.origin import config, running


def test_a_destination_that_resets_mid_upload_is_recorded_as_the_upstream_failing(
    tmp_path: Path,
) -> None:
    """The destination answers early and resets the connection; the client then sends the
    rest of its body, which the proxy cannot write upstream: the record says so."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        connection, _ = server.accept()
        with contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 4\r\n\r\nnope")
            time.sleep(0.2)
            linger = struct.pack("ii", 1, 0)  # closed with a reset
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        connection.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        host, proxy_port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(proxy_port)), timeout=10) as sock:
            sock.sendall(
                b"POST http://127.0.0.1:%d/upload HTTP/1.1\r\nContent-Length: 10\r\n\r\nfirst"
                % port
            )
            time.sleep(0.8)  # the destination has reset the connection meanwhile
            sock.sendall(b"-half")
            with contextlib.suppress(OSError):
                while sock.recv(65536):
                    pass
    server.close()
    thread.join(5)
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert (record["error"] or "").startswith("upstream write failed"), record["error"]
    assert record["bytes_out"] > 0
