"""Copy a tunnel's bytes both ways at the transport level, without streams or tasks.

Why not streams: a CONNECT tunnel carries mostly small TLS records (a handshake is a handful
of them) and then bulk. Through ``StreamReader``/``StreamWriter`` each record costs two copies
and a wake-up of a coroutine per direction; here it is one ``write`` call from inside
``data_received``. Measured with ``benchmarks/egress.py``, that halves the proxy's CPU per
tunnel. It is asyncio's own ``Protocol`` interface, nothing private:

* each side's transport gets a :class:`_Half` as its protocol, which writes what it receives
  to the other side's transport;
* flow control: when a side's write buffer fills (``pause_writing``), the other side stops
  reading until it drains (``resume_writing``), so memory stays bounded by the buffer limits;
* end of file on one side is passed on as a half-close (``write_eof``); the tunnel ends when
  both sides have closed, or at once when either is reset;
* the client's bytes are charged to the upload budget before they leave: a piece that does
  not fit ends the tunnel at once, its error saying why.

The client's side was read through a ``StreamReader`` until the ``CONNECT``; whatever that
reader still holds is taken with its public ``feed_eof``/``read`` and sent on first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, cast

from airlock.egress.limits import UploadBudget

Check = Callable[[bytes | bytearray, bool], str | None]
"""Reads a tunnel's first bytes, held meanwhile, and whether the client closed its side after
them (then it must tell): ``None``: not yet; ``""``: let them through; a reason: refuse the
tunnel."""


class Watch(Protocol):
    """Reads a tunnel's bytes before they go on (and may hold some back for a while)."""

    def feed(self, data: bytes | bytearray) -> tuple[bytes | bytearray, str]:
        """The bytes that may go on now (held ones first), and why to refuse the tunnel,
        or ``""``."""

    def end(self) -> tuple[bytes | bytearray, str]:
        """The side closed: the bytes still held that may go on now, and why the rest may
        not, or ``""``; both may be given (complete requests before a refused one). The
        tunnel is then recorded as refused; what went on before is answered as usual."""


OUT, IN = 0, 1
"""Directions: client to destination, destination to client."""


class Relay:
    """One tunnel: two halves, byte counts each way, and a future done when both sides closed."""

    def __init__(self, budget: UploadBudget, activity: Callable[[], None]) -> None:
        self.counts = [0, 0]
        self.error: str | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.halves = (_Half(self, OUT, budget, activity), _Half(self, IN, None, activity))
        self.check: Check | None = None
        """Set before the client is attached: its first bytes are held until this says. The
        destination's bytes flow meanwhile."""
        self.refused: str | None = None
        """Why :attr:`check` or a watch refused the tunnel: both sides were aborted, or, for
        bytes refused at the client's close, dropped while answers to what went before
        still come."""

    @property
    def client(self) -> _Half:
        """The protocol for the client's transport (reads the client, writes the destination)."""
        return self.halves[OUT]

    @property
    def destination(self) -> _Half:
        """The protocol for the destination's transport."""
        return self.halves[IN]

    def attach_client(self, transport: asyncio.Transport) -> None:
        """Take over the client's transport (from now on its bytes come to this relay)."""
        transport.set_protocol(self.client)
        self.client.connection_made(transport)

    def watch_client(self, watch: Watch) -> None:
        """From now on every piece the client sends is read by ``watch`` before it goes on
        (set by :attr:`check`, which sees the first bytes)."""
        self.client.watch = watch

    def refuse(self, reason: str) -> None:
        """End the tunnel at once, nothing of the client's sent on."""
        self.refused = reason
        self.abort()

    def abort(self) -> None:
        for half in self.halves:
            if half.transport is not None:
                half.transport.abort()

    def _ended(self) -> None:
        if all(half.lost for half in self.halves) and not self.done.done():
            self.done.set_result(None)


class _Half(asyncio.Protocol):
    """Reads one side's transport and writes to the other side's."""

    def __init__(
        self,
        relay: Relay,
        direction: int,
        budget: UploadBudget | None,
        activity: Callable[[], None],
    ) -> None:
        self.relay = relay
        self.direction = direction
        self.budget = budget
        self.activity = activity
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False
        self.waiting: list[bytes | bytearray] = []
        """Bytes received before the other side's transport was there."""
        self.watch: Watch | None = None
        """Reads each piece of this side before it goes on (:meth:`Relay.watch_client`)."""
        self.held: bytearray | None = bytearray() if direction == OUT else None
        """The client's first bytes, held while the relay's :attr:`Relay.check` reads them
        (``None`` once released)."""

    def _release(self, data: bytes) -> bytes:
        """What of the held bytes and ``data`` may go on now (nothing while the check waits
        for more, or refused)."""
        held = self.held
        assert held is not None
        check = self.relay.check
        if check is None:  # no inspection: nothing is held
            self.held = None
            return data
        held += data  # in place: a hello sent a byte at a time is not copied a byte at a time
        verdict = check(held, False)
        if verdict is None:
            return b""
        self.held = None
        if verdict:
            self.relay.refuse(verdict)
            return b""
        return bytes(held)

    @property
    def peer(self) -> _Half:
        return self.relay.halves[1 - self.direction]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        waiting, self.peer.waiting = self.peer.waiting, []
        for data in waiting:
            self.transport.write(data)

    def data_received(self, received: bytes) -> None:
        data: bytes | bytearray = received
        if self.held is not None:
            data = self._release(received)
            if not data:
                return
        if self.watch is not None:
            data, reason = self.watch.feed(data)
            if reason:
                self.relay.refuse(reason)
                return
            if not data:
                return
        self._send(data)

    def _send(self, data: bytes | bytearray) -> None:
        """Write ``data`` to the other side (the client's charged to the budget first)."""
        budget = self.budget
        if budget is not None:  # the client's side: charged before it leaves
            if len(data) > budget.left:
                self.relay.error = budget.spent()
                self.relay.abort()
                return
            budget.left -= len(data)
        peer = self.peer.transport
        if peer is None:
            self.waiting.append(data)
        elif not peer.is_closing():
            peer.write(data)
        self.relay.counts[self.direction] += len(data)
        self.activity()

    def eof_received(self) -> bool:
        check = self.relay.check
        if self.held and check is not None:  # first bytes cut short: told now, as they end
            data, self.held = bytes(self.held), None
            verdict = check(data, True)
            if verdict:
                self.relay.refuse(verdict)
                return True
            self.data_received(data)  # through the watch the check may have set
        self.held = None
        if self.watch is not None:
            rest, reason = self.watch.end()
            if rest:
                self._send(rest)
            if reason:  # the rest is dropped; answers to what went before still come
                self.relay.refused = reason
        self.eof = True
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            if peer.can_write_eof() and not self.peer.eof:
                peer.write_eof()
            else:
                peer.close()
        if self.peer.eof and self.transport is not None:
            self.transport.close()
        return True  # keep our side open: the peer may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        peer = self.peer.transport
        if exc is not None:
            self.relay.error = self.relay.error or (str(exc) or type(exc).__name__)
            if peer is not None:
                peer.abort()
        elif peer is not None and not peer.is_closing():
            peer.close()
        self.relay._ended()

    def pause_writing(self) -> None:
        """Our transport's buffer is full: stop reading the peer."""
        if self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()
