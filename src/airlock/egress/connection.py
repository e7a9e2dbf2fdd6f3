"""What the proxy's client side and destination side share: buffer sizes, the refusal, the
connection to a destination, the ``CONNECT`` asked of an upstream proxy, and the audit records."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

from airlock.egress.http1 import BadRequest, RequestHead
from airlock.egress.rules import shown_host

READ_SIZE = 256 * 1024
YIELD_EVERY = 64
"""Pieces of a body forwarded before the other connections get a turn: one read of a body
sent in one-byte chunks is tens of thousands of pieces, and a write that is not held back
gives the event loop no turn of its own."""
WRITE_BUFFER = 1024 * 1024
"""A transport's write buffer may hold this much before ``drain()`` waits (asyncio's default,
64 KiB, is a quarter of one read: bulk transfers would stop and start on every read)."""
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Refusal(Exception):
    """A connection the proxy will not make: the status to answer, and why."""

    def __init__(self, status: int, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.hint = hint


@dataclass(slots=True)
class Upstream:
    """A connection to a destination (or to the upstream proxy, for it)."""

    host: str
    port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reusable: bool = True
    via_proxy: bool = False
    """The connection is to the upstream proxy (requests go in absolute form)."""
    protocol: UpstreamProtocol | None = None
    """Its stream protocol, which counts what came (:func:`stale`)."""
    taken: int = 0
    """The bytes the responses on it took from :attr:`reader`."""


def stale(upstream: Upstream) -> bool:
    """Whether a kept upstream connection got anything since its last response: bytes no
    request asked for (they would be read as the answer to the next request), its end, or an
    error. Such a connection is not reused.

    The event loop reads a socket as data comes, so unasked bytes are in the reader by now:
    more came (:attr:`UpstreamProtocol.received`) than the responses took
    (:attr:`Upstream.taken`).
    """
    reader = upstream.reader
    return (
        (upstream.protocol is not None and upstream.protocol.received != upstream.taken)
        or reader.at_eof()
        or reader.exception() is not None
        or upstream.writer.is_closing()
    )


class Sink(Protocol):
    """Takes a destination's bytes as they come, in place of the stream's reader
    (:attr:`UpstreamProtocol.sink`)."""

    def feed(self, data: bytes) -> None:
        """The next bytes the destination sent."""

    def ended(self, error: Exception | None) -> None:
        """The destination closed its side (``None``), or the connection failed
        (:class:`ClosedHere`: it was closed on the proxy's side)."""


class ClosedHere(ConnectionAbortedError):
    """The connection to a destination was closed on the proxy's side (a client aborted: idle,
    the run ended) before the destination ended it: what came on it is cut short, whatever
    its framing (a response that ends at the close did not end there)."""

    def __init__(self) -> None:
        super().__init__("the connection to the destination was closed on the proxy's side")


class UpstreamProtocol(asyncio.StreamReaderProtocol):
    """The stream protocol of a connection to a destination, counting the bytes that came
    (:func:`stale`). While a :attr:`sink` is set, what comes goes to it, not to the reader."""

    received = 0
    eof = False
    """The destination closed its side (a connection lost without it was closed here)."""
    sink: Sink | None = None
    """Takes the bytes while a plain response is relayed (:mod:`airlock.egress.forwarding`):
    one call a read, no task woken for it."""

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        sink = self.sink
        if sink is None:
            super().data_received(data)
        else:
            sink.feed(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.sink is not None:
            self.sink.ended(None)
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sink is not None:  # lost with no error nor end of the destination's: aborted here
            self.sink.ended(exc if exc is not None or self.eof else ClosedHere())
        super().connection_lost(exc)


async def open_upstream(
    target: tuple[str, int] | str, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, UpstreamProtocol]:
    """A stream to ``target`` (an address and port, or a Unix socket's path), as
    :func:`asyncio.open_connection` makes one, with an :class:`UpstreamProtocol`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = UpstreamProtocol(reader, loop=loop)
    if isinstance(target, str):
        transport, _ = await loop.create_unix_connection(lambda: protocol, target)
    else:
        transport, _ = await loop.create_connection(lambda: protocol, *target)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop), protocol


class ClientProtocol(asyncio.StreamReaderProtocol):
    """The stream protocol of a client connection, which also notes that the client half-closed.

    A tunnel takes the transport over from the stream (:mod:`airlock.egress.relay`); an end of
    file the stream already received must then be passed on by hand.
    """

    eof_seen = False

    def eof_received(self) -> bool:
        self.eof_seen = True
        return bool(super().eof_received())


def new_record(kind: str, head: RequestHead) -> dict[str, Any]:
    """The audit record of a tunnel or a request, before its outcome is known."""
    return {
        "type": kind,
        "time": time.time(),
        "duration_ms": 0.0,
        "method": head.method.decode("latin-1"),
        "host": shown_host(head.host),
        "port": head.port,
        "status": None,
        "decision": "allow",
        "reason": "",
        "bytes_out": 0,
        "bytes_in": 0,
        "error": None,
    }


def malformed_record(error: BadRequest) -> dict[str, Any]:
    """The audit record of a request refused as malformed."""
    if error.message.startswith("malformed"):
        return refused_record(error.status, error.message, error.message)
    return refused_record(error.status, f"malformed request: {error.message}", error.message)


def refused_record(status: int, reason: str, error: str) -> dict[str, Any]:
    """The audit record of a request refused before its head was read whole (or read at all)."""
    return {
        "type": "request",
        "time": time.time(),
        "duration_ms": 0.0,
        "method": None,
        "host": "",
        "port": 0,
        "status": status,
        "decision": "deny",
        "reason": reason,
        "bytes_out": 0,
        "bytes_in": 0,
        "error": error,
    }
