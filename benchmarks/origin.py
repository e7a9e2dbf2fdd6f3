"""The origin the egress benchmarks fetch from, and the helpers that start servers for them.

The origin is a small uvloop HTTP/1.1 server in a process of its own, plain and TLS (its
certificate from :class:`airlock.egress.ca.RunCA`, for ``localhost``). It reads and drops
every request body (``Content-Length`` or chunked; ``Expect: 100-continue`` is answered),
answers ``/bulk?n=BYTES`` with that many zero bytes and anything else with a short body, and
keeps each connection open unless the client asks to close it.

    python benchmarks/origin.py PORT TLS_PORT CERT_AND_KEY_PEM
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SMALL = b"hello from the origin\n"
CHUNK = 1 << 20


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lowered = head.lower()
            target = head.split(b" ", 2)[1]
            if b"\r\nexpect: 100-continue" in lowered:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if b"\r\ntransfer-encoding: chunked" in lowered:
                await _skip_chunks(reader)
            elif not await _skip(reader, _content_length(lowered)):
                return
            close = b"\r\nconnection: close" in lowered
            extra = b"Connection: close\r\n" if close else b""
            if target.startswith(b"/bulk"):
                size = int(target.rsplit(b"=", 1)[1])
                writer.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (extra, size))
                block = bytes(CHUNK)
                while size:
                    piece = block[: min(CHUNK, size)]
                    writer.write(piece)
                    size -= len(piece)
                    await writer.drain()
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (extra, len(SMALL), SMALL)
                )
            if close:
                await writer.drain()
                return
    finally:
        writer.close()


def _content_length(lowered: bytes) -> int:
    index = lowered.find(b"\r\ncontent-length:")
    if index < 0:
        return 0
    return int(lowered[index + 17 : lowered.index(b"\r\n", index + 2)])


async def _skip(reader: asyncio.StreamReader, length: int) -> bool:
    """Read and drop ``length`` bytes; ``False`` when the client went away first."""
    while length:
        data = await reader.read(min(CHUNK, length))
        if not data:
            return False
        length -= len(data)
    return True


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    """Read a chunked body to its end (trailers included)."""
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            return
        await reader.readexactly(size + 2)


def serve(port: int, tls_port: int, pem: Path) -> None:
    """Serve on 127.0.0.1: plain HTTP on ``port``, TLS with ``pem`` on ``tls_port``."""
    import uvloop

    async def main() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        plain = await asyncio.start_server(_answer, "127.0.0.1", port, backlog=4096)
        secure = await asyncio.start_server(
            _answer, "127.0.0.1", tls_port, ssl=context, backlog=4096
        )
        async with plain, secure:
            await asyncio.Event().wait()

    uvloop.run(main())


def certificates(folder: Path) -> tuple[Path, Path]:
    """The origin's CA certificate and its own certificate and key for ``localhost``, as files
    in ``folder``: ``(ca_file, pem)``."""
    from airlock.egress.ca import RunCA

    ca = RunCA(now=dt.datetime.now(dt.UTC), name="benchmark origin CA")
    ca_file, pem = folder / "origin-ca.pem", folder / "origin.pem"
    ca_file.write_bytes(ca.certificate_pem)
    pem.write_bytes(ca.server_pem("localhost"))
    return ca_file, pem


@contextlib.contextmanager
def origin(pem: Path) -> Iterator[tuple[int, int]]:
    """The origin in its own process; yields its ports ``(plain, tls)`` once it listens."""
    with origin_process(pem) as (port, tls_port, _):
        yield port, tls_port


@contextlib.contextmanager
def origin_process(pem: Path) -> Iterator[tuple[int, int, subprocess.Popen[bytes]]]:
    """The origin in its own process; yields its ports and the process (for its CPU time)."""
    port, tls_port = free_port(), free_port()
    command = [sys.executable, str(Path(__file__).resolve()), str(port), str(tls_port), str(pem)]
    with process(command, tls_port) as child:
        yield port, tls_port, child


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@contextlib.contextmanager
def process(command: list[str], port: int, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (``subprocess.Popen`` arguments in ``kwargs``) until the block ends;
    yields once something listens on ``port``."""
    child = subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
    try:
        wait_port(port)
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
