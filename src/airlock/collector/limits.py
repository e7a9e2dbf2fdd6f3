"""Limits of the collector's HTTP server: sizes, timeouts and a connection cap.

Theory of operation
-------------------
uvicorn parses requests with httptools and bounds neither the request head nor the time a
client takes to send it, and it arms its idle timeout only after a first answer. A client
could hold a connection open with nothing sent, or grow a header without end, and a few
hundred such clients would use up every slot. :func:`guarded_protocol` makes a subclass of
uvicorn's protocol that follows every connection through its phases:

* ``waiting``: connected or between requests, nothing of a request yet;
* ``head``: the request line and headers are arriving: at most ``max_header_bytes`` bytes,
  complete within ``header_timeout`` seconds of the first byte (or of the connection);
* ``body``: the body is arriving; a pause longer than ``body_timeout`` seconds ends it;
* ``answering``: the app has the whole request; the app's own pace applies.

A head that is too large is answered ``431`` and a head that is too slow ``408``; then the
connection is closed. A body that stalls is cut: the app sees a disconnected client.

The connection cap: at ``max_connections`` open connections, a new one closes the connection
that has waited longest without a request under way (idle, or stalled in its head), else the
oldest other one, so stalled clients cannot keep the service from answering everyone else.

:class:`BodyLimit` bounds request bodies while they are read: a ``Content-Length`` above the
path's limit is answered ``413`` before any of the body is read, and a body without one is
counted as it streams and cut at the limit. Nothing buffers a body whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_BODY_BYTES = 1024 * 1024
"""Bodies of paths that name no limit of their own."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may take of the server."""

    max_header_bytes: int = 64 * 1024
    """Request line and headers, together."""
    header_timeout: float = 10.0
    """Seconds from a connection (or the first byte of a request) to the end of its headers."""
    idle_timeout: float = 5.0
    """Seconds a kept-alive connection may wait for its next request."""
    body_timeout: float = 30.0
    """Longest pause, in seconds, while a body arrives."""
    max_connections: int = 256
    """Open connections; beyond it the longest-waiting one without a request is closed."""


_WAITING, _HEAD, _BODY, _ANSWERING = "waiting", "head", "body", "answering"


def _reply(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``limits``' head, timeout and connection rules."""
    open_connections: set[GuardedProtocol] = set()

    class GuardedProtocol(HttpToolsProtocol):
        phase = _WAITING
        head_bytes = 0
        tail = b""
        since = 0.0
        timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            open_connections.add(self)
            self._enter(_WAITING, limits.header_timeout, self._too_slow)
            if len(open_connections) > limits.max_connections:
                others = [c for c in open_connections if c is not self]
                waiting = [c for c in others if c.phase in (_WAITING, _HEAD)]
                min(waiting or others, key=lambda c: c.since)._close()

        def connection_lost(self, exc: Exception | None) -> None:
            open_connections.discard(self)
            self._cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.phase == _WAITING:
                self._enter(_HEAD, limits.header_timeout, self._too_slow)
                self.head_bytes = 0
                self.tail = b""
            if self.phase == _HEAD:
                # Measured before parsing: the parser would keep every header it is fed.
                seen = self.tail + data
                end = seen.find(b"\r\n\r\n")
                self.head_bytes += len(data) if end < 0 else end + 4 - len(self.tail)
                self.tail = seen[-3:]
                if self.head_bytes > limits.max_header_bytes:
                    self._refuse(
                        431,
                        "Request Header Fields Too Large",
                        f"request line and headers over {limits.max_header_bytes} bytes",
                    )
                    return
            elif self.phase == _BODY:
                self._enter(_BODY, limits.body_timeout, self._close)
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self.phase != _HEAD:  # a pipelined request after a complete one
                self._enter(_HEAD, limits.header_timeout, self._too_slow)

        def on_headers_complete(self) -> None:
            self._enter(_BODY, limits.body_timeout, self._close)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._enter(_ANSWERING, None, self._close)
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.phase == _ANSWERING:
                self._enter(_WAITING, limits.idle_timeout, self._close)

        def _enter(self, phase: str, seconds: float | None, then: Any) -> None:
            self._cancel()
            self.phase = phase
            self.since = self.loop.time()
            if seconds is not None:
                self.timer = self.loop.call_later(seconds, then)

        def _cancel(self) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def _too_slow(self) -> None:
            if self.phase == _HEAD:
                self._refuse(
                    408,
                    "Request Timeout",
                    f"request headers not complete within {limits.header_timeout} s",
                )
            else:
                self._close()

        def _refuse(self, status: int, reason: str, message: str) -> None:
            if not self.transport.is_closing():
                self.transport.write(_reply(status, reason, message))
            self._close()

        def _close(self) -> None:
            self._cancel()
            open_connections.discard(self)
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


class BodyLimit:
    """ASGI middleware: each request body bounded by its path's limit, while it is read.

    A body that passes its limit is answered ``413`` at once; the app then sees a client that
    went away (``http.disconnect``) and whatever it answers is dropped. An answer sent before
    the body was read whole closes the connection, so the rest of the body is never read.
    """

    def __init__(
        self,
        app: ASGIApp,
        default: int = MAX_BODY_BYTES,
        paths: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.default = default
        self.paths = tuple(paths)
        """Limits of the paths that match a pattern (the first that matches)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = next((size for pattern, size in self.paths if pattern.match(path)), self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, f"a body of {declared} bytes: the limit here is {limit}")
            return
        received = 0
        started = answered = False
        pending = bool(declared) or any(
            name == b"transfer-encoding" for name, _ in scope["headers"]
        )

        async def counted() -> Message:
            nonlocal received, answered, pending
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                pending = pending and message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    answered = True
                    if not started:
                        await _too_large(send, f"a body over {limit} bytes: the limit here")
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
                if pending:  # answered before the body was read: the rest is not wanted
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), (b"connection", b"close")],
                    }
            await send(message)

        with contextlib.suppress(ClientDisconnect):  # a client gone: nobody to answer
            await self.app(scope, counted, watched)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _too_large(send: Send, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
