"""What any relay can reach on this machine: a port forwarder that copies in the kernel.

``benchmarks/egress.py`` compares a proxy's bulk transfer with a direct download. Direct, two
processes share the machine (the origin and curl); through any proxy, a third one must receive
and send every byte again. :func:`forwarder` is that third process at its cheapest: no HTTP
parsing, no event loop, no copy into Python: each direction is a thread moving bytes from one
socket to the other with ``os.splice`` through a pipe, so the data never leaves the kernel.
Its figure next to direct is the ceiling of the ``plain MB/s`` column on this machine, for
airlock and for every peer.

    python benchmarks/relay_floor.py   # direct and the forwarder, once, 500 MB
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from origin import CHUNK, certificates, origin

PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the fcntl module from Python 3.10 on Linux


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Move bytes from ``source`` to ``sink`` until end of file, then half-close ``sink``."""
    import fcntl

    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(read_end, F_SETPIPE_SZ, PIPE_SIZE)
        while moved := os.splice(source.fileno(), write_end, PIPE_SIZE):
            while moved:
                moved -= os.splice(read_end, sink.fileno(), moved)
    except OSError:
        pass  # the other side went away: the download reports it
    finally:
        os.close(read_end)
        os.close(write_end)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, target: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed: the forwarder is done
        upstream = socket.create_connection(("127.0.0.1", target))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


@contextlib.contextmanager
def forwarder(target: int) -> Iterator[int]:
    """A kernel-copy forwarder to ``127.0.0.1:target`` in this process; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    thread = threading.Thread(target=_serve, args=(listener, target), daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def download(port: int, megabytes: int) -> float:
    """MB/s of one plain download of ``megabytes`` from ``127.0.0.1:port`` with curl."""
    url = f"http://127.0.0.1:{port}/bulk?n={megabytes * CHUNK}"
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True, timeout=600)
    return megabytes / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        _, pem = certificates(Path(name))
        with origin(pem) as (port, _tls), forwarder(port) as relay:
            direct, relayed = download(port, 500), download(relay, 500)
    print(f"direct: {direct:,.0f} MB/s")
    print(f"kernel-copy forwarder: {relayed:,.0f} MB/s ({100 * relayed / direct:.0f}% of direct)")


if __name__ == "__main__":
    main()
