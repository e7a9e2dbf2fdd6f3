"""An error's text as the records and the report show it: uvloop's own words for a connection
that had closed name its transport object (``<TCPTransport closed=True reading=False 0x…>``),
which says nothing to a reader; the record says the connection had already closed."""

from __future__ import annotations

import subprocess
import sys

from airlock.egress.server import CLOSED_TRANSPORT, plain_error

PROBE = """
import asyncio, uvloop

async def main():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    await asyncio.sleep(0.01)
    try:
        writer.transport.write_eof()
    except RuntimeError as error:
        print(error)
    server.close()

uvloop.run(main())
"""


def _closed_transport_error() -> str:
    """The words uvloop (the proxy's event loop) raises for an operation on a connection that
    had closed, from a loop of its own in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def test_a_closed_connection_is_said_in_words() -> None:
    error = _closed_transport_error()
    assert "TCPTransport" in error, error  # uvloop's own words, as a record got them
    assert plain_error(RuntimeError(error)) == CLOSED_TRANSPORT
    assert plain_error(f"writing the answer: {error}") == f"writing the answer: {CLOSED_TRANSPORT}"


def test_other_errors_keep_their_words_without_an_address() -> None:
    assert plain_error(ConnectionResetError("Connection lost")) == "Connection lost"
    assert plain_error("failed on <Thing 0x7f65aa>") == "failed on <Thing>"
