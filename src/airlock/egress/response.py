"""Where a relayed response ends, and the form an HTTP/1.0 client can read.

:class:`ResponseWatcher` follows the destination's response through httptools as it streams
to the client, to find its end (the next request may reuse the connection). The bytes pass
untouched to an HTTP/1.1 client. An HTTP/1.0 client cannot read a chunked body nor keep a
connection whose response has no length, so for it the head is rebuilt (``HTTP/1.0``, the
framing and hop-by-hop headers dropped, ``Connection: close``), interim ``1xx`` answers are
dropped, the body is passed on decoded (httptools' ``on_body``), and the proxy closes the
connection after it: the close marks where the body ends, as HTTP/1.0 reads it.

The proxy sends one request at a time on an upstream connection (it never pipelines), so
bytes after the final response are no answer to anything: a second message begun in the same
read (httptools' ``on_message_begin`` after a final status; interim ``1xx`` answers before it
are allowed), or body bytes or chunks after the head of an answer to ``HEAD``, which has none
(a last chunk ``0\r\n\r\n`` holds no body byte, yet a client reads it as the start of its next
answer). The watcher
marks them (:attr:`ResponseWatcher.extra`) and the proxy fails the response rather than pass
them on: a kept-alive client would take them as the answer to its next request, maybe to
another host. httptools says where a message ends only by its callbacks, not by an offset,
so such a read is never split: none of it is sent.

A response's head is held until it is whole, and is bounded (``MAX_HEAD``): httptools gathers
a header line whole, so one that never ended would grow the proxy's memory without limit. A
larger one fails the response (:class:`HeadTooLarge`), before any of it reached the client.
A chunked body's trailers are header lines too, after the head, where no such bound counts
them: the body is read by a parser of its own that gathers none (:class:`ChunkedBody`), and
they pass on as they come.

The final response's head goes to the client without the headers that belong to the
destination's hop (:func:`hop_by_hop`: ``Connection`` and what it names, ``Keep-Alive``,
``Proxy-Authenticate``, ``Upgrade``, …, RFC 9110 §7.6.1), with airlock's own ``Connection``
for the client's hop (:func:`client_connection`). A header
``Connection`` names that frames the body (``Content-Length``, ``Transfer-Encoding``) stays:
the proxy found the body's end by it, and the client must find the same end. To know where
that head ends (httptools says it only by its callbacks), the watcher feeds httptools up to
each blank line until the final head is whole (:attr:`ResponseWatcher.head_span`); the rest
of a read goes in one piece.

A response with a body whose ``Transfer-Encoding`` does not end in ``chunked`` (``identity``,
``chunked, gzip``) fails too, before any of it reached the client
(:class:`UnsupportedCoding`), as inside inspected TLS (:meth:`~airlock.egress.framing.Head.framing`)
and as nginx refuses it: RFC 9112 §6.3 ends such a body at the close, but clients read it
apart (Ruby's ``Net::HTTP`` takes any ``chunked`` in the value for chunked framing, Go and h11
refuse it), and one that takes it for chunked ends it early and reads the rest, the
destination's bytes, as the answer to its next request, maybe to another host. So does an
HTTP/1.0 response with a ``Transfer-Encoding``, which HTTP/1.0 does not have (RFC 9112 §6.1:
its framing is faulty): llhttp reads its chunks, and the proxy said ``Connection:
keep-alive`` for the client after it, while Go's client ignores the header there and reads
the body to the close, the chunks' framing in it, waiting for a close that did not come.

A response whose status is below ``100`` fails too (:class:`BadStatus`), before any of it
reached the client: llhttp takes ``HTTP/1.1 000`` and reads a body after it by its length,
and Node's client (llhttp too) takes it for the final answer, while the watcher would have
taken it for an interim one (below ``200``) and passed on the answer after it as part of the
same response: a client that takes the first for its answer reads the second, the
destination's bytes, as the answer to its next request, maybe to another host; and the
record said the second's status. Inside inspected TLS such a status is refused as well.

A response that fails once its final head reached the client (the destination closed or
reset the connection mid-body, sent bytes no request asked for, or, inside inspected TLS,
ended a body that ends at the close without TLS's ``close_notify``) cannot be answered any
more: the client's connection is cut (:func:`cut_off`: a TCP reset, no ``close_notify``),
not closed. Closed, the end of a body that ends at the close (no length; to an HTTP/1.0
client, every body, a chunked one decoded) looks like the whole of it, and the client takes
a part for the answer; a second answer written after the head would be read as body bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct

import httptools

from airlock.egress.framing import named_codings
from airlock.egress.http1 import connection_tokens

RESPONSE_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authentication-info",
        b"te",
        b"upgrade",
    }
)
"""Response headers that belong to the destination's hop, never passed to the client: its
connection's options, and a proxy's challenge (``Proxy-Authenticate`` is for the client that
chose that proxy, RFC 9110 §11.7.1: airlock, when it chains through one; the sandbox has no
credentials for it, and none it sends is passed on)."""
FRAMING = frozenset({b"content-length", b"transfer-encoding"})
"""Headers that frame a response's body: never dropped because ``Connection`` names them (the
proxy found the body's end by them; the client must find the same one)."""
DROPPED_FOR_HTTP10 = RESPONSE_HOP_BY_HOP | {b"trailer", b"transfer-encoding"}
"""Response headers an HTTP/1.0 client does not get (hop by hop, or framing it cannot read)."""
HEAD_END = b"\r\n\r\n"
"""What ends a response head (llhttp takes no bare LF in one)."""


def hop_by_hop(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The lower-cased names of a response's headers that stay on the destination's hop
    (RFC 9110 §7.6.1): :data:`RESPONSE_HOP_BY_HOP` and what its ``Connection`` (or
    ``Proxy-Connection``) names, but never a header that frames its body (:data:`FRAMING`)."""
    return (RESPONSE_HOP_BY_HOP | connection_tokens(headers)) - FRAMING


def client_connection(status_line: bytes, *, closes: bool, until_close: bool) -> bytes | None:
    """The ``Connection`` airlock gives a response for the client's hop (the destination's
    own is dropped, :func:`hop_by_hop`): ``close`` when the client asked to close
    (``closes``: RFC 9112 §9.6); none for a body that ends at the close (``until_close``:
    every client reads that as the connection's end); ``keep-alive`` when the connection
    goes on after a status line of ``HTTP/1.0`` (which a client reads as its end without
    it); else none (HTTP/1.1 keeps it)."""
    if closes:
        return b"close"
    if not until_close and status_line[:8].upper() == b"HTTP/1.0":
        return b"keep-alive"
    return None


_HOP_BY_HOP_LINE = re.compile(
    rb"\n(?:connection|keep-alive|proxy-[!#$%&'*+.^_`|~0-9a-z-]*|upgrade|te)[ \t]*:", re.IGNORECASE
)
"""A header line :func:`hop_by_hop` could drop: without one (most answers), and with no
``Connection`` of airlock's to add, a head goes on as it came, unsplit (a keep-alive request's
share of the proxy's time is a few microseconds; splitting every head cost about three)."""


def relayed_head(raw: bytes, *, closes: bool, until_close: bool) -> bytes:
    """A final response's head (``raw``, as the destination sent it, whole and read by
    llhttp: CRLF lines, no folding) as an HTTP/1.1 client gets it: each line as sent, less
    those :func:`hop_by_hop` names, with airlock's own ``Connection``
    (:func:`client_connection`). ``raw`` itself when nothing changes."""
    if (
        _HOP_BY_HOP_LINE.search(raw) is None
        and client_connection(raw.lstrip(b"\r\n"), closes=closes, until_close=until_close) is None
    ):
        return raw
    lines = raw.lstrip(b"\r\n").split(b"\r\n")
    while lines and not lines[-1]:
        lines.pop()
    fields = [line.partition(b":") for line in lines[1:]]
    dropped = hop_by_hop([(name, value.strip()) for name, _, value in fields])
    out = [lines[0]]
    kept = zip(lines[1:], fields, strict=True)
    out += [line for line, (name, _, _) in kept if name.lower() not in dropped]
    connection = client_connection(lines[0], closes=closes, until_close=until_close)
    if connection is not None:
        out.append(b"Connection: " + connection)
    return b"\r\n".join(out) + HEAD_END


def _final_status_line(data: bytes) -> bool:
    """Whether ``data`` starts with the status line of a final answer (not an interim
    ``1xx``), with nothing before it: the answer's head then ends at the first blank line of
    ``data`` (llhttp takes no line in a head without its CR), if it is there."""
    return data[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 ") and data[9:10] in (b"2", b"3", b"4", b"5")


_LINGER_RESET = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on, for no time: a close then resets the connection (TCP RST)."""


def cut_off(writer: asyncio.StreamWriter) -> None:
    """End a client's connection with a reset, not a close (see :mod:`the module
    <airlock.egress.response>`): a TCP RST, and inside TLS no ``close_notify``. Bytes still
    in the proxy's buffers for it go with it (the record counts what was handed over)."""
    sock = writer.get_extra_info("socket")  # under TLS too: the connection's own
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


MAX_HEAD = 256 * 1024
"""The most bytes a response's head may take (counted by read, interim answers included)."""


class ResponseError(Exception):
    """The destination's response could not be relayed; ``received`` bytes already were."""

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received
        self.answerable = received == 0
        """No final head reached the client (nothing did, or interim ``1xx`` answers alone):
        airlock can still answer it, saying why (a final answer may follow interim ones)."""


class HeadTooLarge(Exception):
    """The destination's response head passed ``MAX_HEAD`` bytes."""

    def __init__(self) -> None:
        super().__init__(f"the destination's response head exceeds {MAX_HEAD} bytes: not passed on")


class UnsupportedCoding(Exception):
    """The destination's response has a body framed by a ``Transfer-Encoding`` whose last
    coding is not ``chunked``, or by one at all in HTTP/1.0 (``http10``; see :mod:`the module
    <airlock.egress.response>`)."""

    def __init__(self, codings: list[bytes], *, http10: bool = False) -> None:
        if http10:
            super().__init__(
                "the destination's response is HTTP/1.0 (or older) with Transfer-Encoding "
                f"{named_codings(codings)}, which HTTP/1.0 does not have (its framing is "
                "faulty, RFC 9112 section 6.1): clients read its body apart (as chunked, or to "
                "the close as Go's does); not passed on"
            )
            return
        super().__init__(
            f"the destination's response has Transfer-Encoding {named_codings(codings)}, whose "
            "last coding is not chunked: its body would end only where the connection does, "
            "which clients read differently (some as chunked); not passed on"
        )


class BadStatus(Exception):
    """The destination's response has a status below ``100``, which is no HTTP status
    (RFC 9110 §15: three digits, ``100`` to ``599``)."""

    def __init__(self, status: int) -> None:
        super().__init__(
            f"the destination's response has status {status:03d}, below 100: no HTTP status "
            "(clients read it apart, as a final answer or an interim one); not passed on"
        )


class _BodyFollows(Exception):
    """Stops the parser of a response's head where a chunked body begins (raised in its
    ``on_headers_complete``): :class:`ChunkedBody` reads the body."""


class ChunkedBody:
    """The parser of a response's chunked body, after its head, with no ``on_header``.

    httptools gathers each header line whole before it hands it on, in a copy that each read
    grows: the trailers after a body's last chunk too, which no bound on the head counts. A
    destination that sent a trailer that never ended grew the proxy's memory without limit,
    and the copying, quadratic (32 MB in 64 KB reads: 4.5 s), held the event loop, every connection with it,
    for minutes. A parser without ``on_header`` gathers nothing: the trailers pass on to the
    client as they come, as a body's bytes do. It is started with a head of its own that says
    ``chunked``; the final head's parser stops where the head ends (:class:`_BodyFollows`).
    """

    HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

    def __init__(self, watcher: ResponseWatcher) -> None:
        self.watcher = watcher
        self.begun = False
        self.parser = httptools.HttpResponseParser(self)
        self.parser.feed_data(self.HEAD)

    def on_message_begin(self) -> None:
        if self.begun:  # after the body: a second message, unasked
            self.watcher.extra = True
        self.begun = True

    def on_message_complete(self) -> None:
        self.watcher.done = True


class DecodedChunkedBody(ChunkedBody):
    """A :class:`ChunkedBody` for an HTTP/1.0 client, which gets the body decoded."""

    def on_body(self, body: bytes) -> None:
        self.watcher._out.append(bytes(body))


class ResponseWatcher:
    """Follows one response through httptools to find where it ends. Bytes pass untouched,
    except for an HTTP/1.0 client (the :class:`Http10Watcher`): :meth:`take`
    then hands out what to send it instead, the rebuilt head and the decoded body.

    This class has no ``on_body``: httptools then skips making a copy of every body piece
    (it looks the callbacks up once), which is most of a bulk download's parsing cost; nor
    ``on_status`` (the reason phrase), which only :class:`Http10Watcher` rebuilds a head with.
    """

    for_http10 = False
    """Whether the client speaks HTTP/1.0 (only :class:`Http10Watcher` does)."""
    chunked_body: type[ChunkedBody] = ChunkedBody
    """What reads a chunked body after its head (for an HTTP/1.0 client: decoded)."""

    def __init__(self, method: bytes, *, closes: bool = False) -> None:
        self.head_only = method == b"HEAD"
        self.closes = closes
        """The proxy ends the client's connection after this answer, whatever it is (the
        client asked to): its head says ``Connection: close`` (:func:`relayed_head`)."""
        self.parser = httptools.HttpResponseParser(self)
        self.fed = 0
        """The bytes fed so far: the stream's offsets count from the response's first."""
        self.head_span: tuple[int, int] | None = None
        """Where the final response's head lies in the stream (from the end of an interim
        answer before it, or the start), once whole: what :func:`relayed_head` rebuilds."""
        self._head_start = 0
        self._head_ended = False
        self._tail = b""
        """The last bytes fed, for a blank line split between two reads."""
        self.status: int | None = None
        self.done = False
        self.in_head = False
        """A head is begun and not yet whole (the caller holds its bytes meanwhile)."""
        self._head_bytes = 0
        self.extra = False
        """Bytes came after the response (:mod:`the module <airlock.egress.response>` says
        which): the read that holds them must not be passed on."""
        self.keep_alive = True
        self.until_close = False
        self._framed = False
        self._chunked = False
        self._codings: list[bytes] = []
        """The values of the final response's ``Transfer-Encoding`` lines."""
        self.unsupported: UnsupportedCoding | BadStatus | None = None
        """Set when a head is whole and the response cannot be passed on (its body's coding,
        :class:`UnsupportedCoding`; its status, :class:`BadStatus`): :meth:`feed` raises it."""
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._out: list[bytes] = []
        self._body: ChunkedBody | None = None
        """The final response's chunked body's own parser, once its head is whole."""
        self.refused: str | None = None
        """The ``X-Airlock-Refused`` header's value: the git gateway's refusal (the caller
        believes it only from the gateway)."""
        self.failed: str | None = None
        """The ``X-Airlock-Failed`` header's value: why the git gateway answered ``502`` (the
        code host could not be reached, its answer failed; believed from the gateway only)."""

    def feed(self, data: bytes) -> None:
        """Follow ``data`` through httptools.

        Raises:
            HeadTooLarge: the head passed ``MAX_HEAD`` bytes.
            UnsupportedCoding: the response's body is framed by a coding that does not end
                in ``chunked``.
            BadStatus: a head's status is below ``100``.
        """
        if self.status is None:  # the final head is not whole yet
            end = data.find(HEAD_END) if self.fed == 0 and _final_status_line(data) else -1
            if end >= 0:  # most answers: a final head whole in the first read, fed at once
                self._feed_head(data, end + len(HEAD_END))
                if self.status is not None:  # it ends at its first blank line (no 1xx before)
                    self.head_span = (0, end + len(HEAD_END))
            else:
                self._feed_heads(data)
        else:
            self.parser.feed_data(data)
        self.fed += len(data)
        if self.unsupported is not None:
            raise self.unsupported
        if self.in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                raise HeadTooLarge

    def _feed_heads(self, data: bytes) -> None:
        """Feed ``data`` up to each blank line (a head's possible end) until the final head is
        whole, then the rest at once: a head that ends in a piece ends at its end, which
        :attr:`head_span` and the end of an interim answer (where the final head begins)
        are read from."""
        window = self._tail + data
        shift = len(self._tail)
        self._tail = window[-3:]
        start = 0
        while self.status is None:
            found = window.find(HEAD_END, max(start + shift - 3, 0))  # spread over reads too
            if found < 0:
                break
            end = found + 4 - shift  # in ``data``
            self._head_ended = False
            self._feed_head(data[start:end], end - start)
            start = end
            if self._head_ended:
                if self.status is None:  # an interim answer: the final head starts after it
                    self._head_start = self.fed + end
                else:
                    self.head_span = (self._head_start, self.fed + end)
        if start < len(data):
            self.parser.feed_data(data[start:] if start else data)

    def _feed_head(self, data: bytes, end: int) -> None:
        """Feed ``data``, in which a head may end at ``end``: when it is the final head of a
        chunked body, the rest goes to that body's own parser (:class:`ChunkedBody`), which
        reads it from there on (the head's parser stops where the head ends)."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._body is None or self.parser is self._body.parser:
                raise  # a callback's own failure
            self.parser = self._body.parser
            if end < len(data):
                self.parser.feed_data(memoryview(data)[end:])

    def take(self) -> list[bytes]:
        """What to send an HTTP/1.0 client for the bytes fed so far."""
        out, self._out = self._out, []
        return out

    def on_message_begin(self) -> None:
        self.in_head = True
        if self.status is not None:  # after the final response: a second one, unasked
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            self._framed = True
            if lowered == b"transfer-encoding":
                self._chunked = True
                self._codings.append(bytes(value))
        elif lowered == b"x-airlock-refused":
            self.refused = bytes(value).decode("latin-1")
        elif lowered == b"x-airlock-failed":
            self.failed = bytes(value).decode("latin-1")
        if self.for_http10:
            self._headers.append((bytes(name), bytes(value)))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._head_ended = True
        status = self.parser.get_status_code()
        if status < 100:  # llhttp takes ``000``, and reads a body by its length, as Node does
            self.unsupported = BadStatus(status)  # for a final answer: not as interim here
            return
        if status < 200:
            self._framed = self._chunked = False  # an interim answer
            self._reason, self._headers, self._codings = b"", [], []
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        if self._codings and not self.head_only and status not in (204, 304):
            last = b",".join(self._codings).rsplit(b",", 1)[-1]  # as llhttp reads it
            if last.strip().lower() != b"chunked":
                self.unsupported = UnsupportedCoding(self._codings)
                return
            if self.parser.get_http_version() != "1.1":  # llhttp reads HTTP/1.0 chunks too
                self.unsupported = UnsupportedCoding(self._codings, http10=True)
                return
        if self.for_http10:
            self._out.append(http10_head(status, self._reason, self._headers, self._chunked))
        if self.head_only:
            self.done = True
            self.keep_alive = False  # where a HEAD answer ends is not checked: no reuse
        elif status in (204, 304):
            pass  # no body, whatever the head says
        elif self._chunked:  # read from here on by a parser of its own: it stops here
            self._body = self.chunked_body(self)
            raise _BodyFollows
        elif not self._framed:
            self.until_close = True

    def on_message_complete(self) -> None:
        if self.status is not None:
            self.done = True


class HeadWatcher(ResponseWatcher):
    """A :class:`ResponseWatcher` for an answer to ``HEAD``: it has no body, so body bytes
    httptools finds after its head (it cannot know the request was ``HEAD``) are extra, and
    so is a chunk, even the last one (``0\r\n\r\n``, which has no body byte) of an answer
    that says ``Transfer-Encoding: chunked``."""

    def on_body(self, body: bytes) -> None:
        self.extra = True

    def on_chunk_header(self) -> None:
        self.extra = True


class Http10Watcher(ResponseWatcher):
    """A :class:`ResponseWatcher` for an HTTP/1.0 client: it keeps the reason phrase and the
    decoded body."""

    for_http10 = True
    chunked_body = DecodedChunkedBody

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            self.extra = True  # as for HeadWatcher
        else:
            self._out.append(bytes(body))

    def on_chunk_header(self) -> None:
        if self.head_only:
            self.extra = True  # as for HeadWatcher


def watcher_for(method: bytes, version: str, *, closes: bool = False) -> ResponseWatcher:
    """The watcher for a response to a request of ``method`` from an HTTP ``version``
    client; ``closes``: the proxy ends the client's connection after it."""
    if version == "1.0":
        return Http10Watcher(method, closes=True)
    kind = HeadWatcher if method == b"HEAD" else ResponseWatcher
    return kind(method, closes=closes)


def http10_head(
    status: int, reason: bytes, headers: list[tuple[bytes, bytes]], chunked: bool
) -> bytes:
    """The head of a response for an HTTP/1.0 client, whose body ends where the connection does.

    ``Content-Length`` stays when the destination framed the body by it; with ``chunked`` it
    goes too (it would not match what was sent).
    """
    dropped = DROPPED_FOR_HTTP10 | hop_by_hop(headers)
    lines = [b"HTTP/1.0 %d %s" % (status, reason)]
    for name, value in headers:
        lowered = name.lower()
        if lowered in dropped:
            continue
        if chunked and lowered == b"content-length":
            continue
        lines.append(name + b": " + value)
    lines += [b"Connection: close", b"\r\n"]
    return b"\r\n".join(lines)
