"""Plain HTTP forwarding: a request is admitted, rebuilt
(:func:`~airlock.egress.http1.forwarded_head`) and its body streamed upstream piece by piece;
the response is streamed back as it arrives, its end found by httptools, its head without
the destination's hop-by-hop headers (:func:`~airlock.egress.response.relayed_head`); bytes
the destination sends after it in the same read fail it unsent
(:mod:`airlock.egress.response`). airlock's own answer to a request that had partly left (a
chunked body malformed part-way: ``400``; a response that failed before any of it was
passed on: ``502``) is counted in the record's ``bytes_in``, as every answer the client got;
a response that fails after its head went cuts the client's connection
(:func:`~airlock.egress.response.cut_off`), so that what the client got does not look whole.
A request to the upstream proxy (absolute form) carries the ``Proxy-Authorization`` of its
URL, as each ``CONNECT`` to it does (:func:`_with_credentials`).
The upstream connection is kept for the client's next request to the same
``host:port``, unless the destination sent anything on it meanwhile
(:func:`~airlock.egress.connection.stale`): then it is closed and a new one dialled. One audit
record per request. A request to a host named with ``--inspect`` is also named by flow,
enforced and checked for secrets (:mod:`airlock.egress.plain`). An HTTP/1.0 client gets its
response in a form it can read (:mod:`airlock.egress.response`), and the connection closed
after it.

A body the destination leaves unread must not be read there as a request of its own, which
airlock never judged. So a ``GET`` or ``HEAD`` with a body is refused ``400``, as inside
inspected TLS (the git gateway, which reads every body, refuses its own); a request of
another method with a body goes with ``Connection: close``, and its upstream connection is
not kept after it; and a body sized by its length whose first line is a request line
(:func:`~airlock.egress.cleartext.starts_request`, as in a tunnel in the clear) is refused
before any of the request leaves. A request without a body pays one test for all of this."""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

import httptools

from airlock.egress.cleartext import BODY_LINE_LIMIT, starts_request
from airlock.egress.config import is_gateway, shown_answer
from airlock.egress.connection import (
    CONTINUE,
    READ_SIZE,
    WRITE_BUFFER,
    YIELD_EVERY,
    ClosedHere,
    Refusal,
    Upstream,
    new_record,
    stale,
)
from airlock.egress.framing import (
    HttpError,
    could_hold_secrets,
    refuse_a_body_on_get,
    write_in_pieces,
)
from airlock.egress.http1 import (
    END,
    BadRequest,
    End,
    RequestHead,
    forwarded_head,
    redact_query,
    simple_response,
)
from airlock.egress.response import (
    BadStatus,
    HeadTooLarge,
    ResponseError,
    ResponseWatcher,
    UnsupportedCoding,
    cut_off,
    relayed_head,
    watcher_for,
)

if TYPE_CHECKING:
    from airlock.egress.client import Client
    from airlock.egress.plain import PlainInspection
    from airlock.egress.report import HostStats

LAST_CHUNK = b"0\r\n\r\n"
"""The end of a chunked body."""

BODY_REQUEST = (
    "a body that starts as a request does: refused (a server that ignores its Content-Length "
    "would read it as a request of its own, which airlock never judged)"
)
"""Why a request whose body's first line is a request line is refused (:func:`_starts_request`)."""


async def forward(client: Client, head: RequestHead) -> bool:
    """Forward one request and its response; whether the client connection goes on."""
    record = client.pending = new_record("request", head)
    record["path"] = redact_query(head.path)
    proxy = client.proxy
    inspection = None
    if proxy.inspector is not None:
        ruled = proxy.check_rules(head.host, head.port)  # the host judged in its canonical form
        if ruled.allowed and proxy.inspector.inspects(ruled.host):
            from airlock.egress.plain import PlainInspection  # the redaction engine: only then

            inspection = PlainInspection(proxy.inspector, head, ruled.host)
            record["host"] = ruled.host  # refusals by inspection name it as the rules read it
    if inspection is None:  # a token in the path stays out of the log (inspection's own)
        target = head.path.decode("latin-1")
        if could_hold_secrets(target) or (
            "%" in target and could_hold_secrets(unquote(target, errors="replace"))
        ):
            record["path"], _ = await proxy.logged_path(target, record["path"])
    try:
        return await _forward(client, head, record, inspection)
    finally:
        if inspection is not None:
            inspection.held.release()  # a gathered body: given back once the request is done


async def _forward(
    client: Client, head: RequestHead, record: dict[str, Any], inspection: PlainInspection | None
) -> bool:
    proxy = client.proxy
    body: bytes | None = None
    carries = bool(head.chunked or head.content_length)  # what a bodiless request pays
    if inspection is not None:
        from airlock.egress.scan import (
            SecretsMode,
            header_refusal,
            header_secrets,
            path_refusal,
            path_secrets,
        )

        redactor = inspection.inspector.redactor
        record["path"], in_path = path_secrets(
            redactor, head.path.decode("latin-1"), record["path"]
        )
        inspection.add(in_path)
        in_head, redacted = header_secrets(redactor, head.headers)
        inspection.add(in_head)
        record.update(inspection.fields())
        mode, why = inspection.mode, ""
        if mode is not SecretsMode.REPORT and in_path:
            why = path_refusal(mode, in_path)
        elif mode is not SecretsMode.REPORT and in_head:
            if mode is SecretsMode.BLOCK or redacted is None:
                why = header_refusal(mode, in_head)
            else:
                head.headers = redacted  # each secret replaced where it stands in its value
        status = 403
        if not why and (error := _body_on_get(head)) is not None:
            why, status = error.message, error.status
        if why:
            return await _refused_with_body(client, head, record, status, why)
        going, body = await _screen(client, head, record, inspection)
        if not going:
            return False
    elif carries and not is_gateway(head.host):  # the gateway refuses its own, 405 first
        error = _body_on_get(head)
        if error is not None:
            with contextlib.suppress(ValueError):  # as the rules read it, when it can be read
                record["host"] = proxy.check_rules(head.host, head.port).host
            return await _refused_with_body(client, head, record, error.status, error.message)
    upstream = client.upstream
    try:
        if (
            upstream is None
            or not upstream.reusable
            or (upstream.host, upstream.port) != (head.host, head.port)
            or stale(upstream)
        ):
            client.drop_upstream()
            decision, address = await proxy.admit(head.host, head.port)
            if address is not None and address != decision.host:
                record["address"] = address  # the one dialled, as the name resolved
            upstream = client.upstream = await proxy.dial(decision.host, head.port, address)
        else:
            decision = proxy.check_rules(head.host, head.port)
            if not decision.allowed:  # pragma: no cover - same host:port as admitted
                raise Refusal(403, decision.reason)
            if not proxy.budget.admit():
                raise Refusal(403, proxy.budget.reason)
    except Refusal as refusal:
        await client.refuse(head, refusal, record)
        return False
    record["host"] = decision.host  # as the rules read it (``0x7f.1`` is ``127.0.0.1``)
    if inspection is None:
        record["reason"] = decision.reason
    if carries and head.content_length:  # sized by its length (or gathered): told first
        if head.expect_continue:  # its first bytes are read before its head goes
            client.writer.write(CONTINUE)
            head.expect_continue = False
        if await _starts_request(client, body):
            if body is None:  # read before answering (a gathered one was)
                await _drain(client)
            return await _refused(client, record, *_refusal(400, BODY_REQUEST))
    stats = proxy.stats(decision.host)
    if head.expect_continue:
        client.writer.write(CONTINUE)
    progress = [0]  # bytes sent so far, for a body found malformed on the way
    try:
        sent = await _send_request(client, head, upstream, body, inspection, progress)
    except (ConnectionError, OSError, RuntimeError) as error:  # what was handed over went, maybe
        if isinstance(error, RuntimeError) and not upstream.writer.transport.is_closing():
            raise  # uvloop's word for a write to a closed transport (the destination reset it)
        return await _cut_short(
            client, record, stats, inspection, progress[0], f"upstream write failed: {error}"
        )
    except BadRequest as error:  # part of the body went out before the bad part came
        # Answered here, not by the connection's handler, so that its record counts the
        # answer in ``bytes_in``: what the client received, as for every other refusal.
        stats.bytes_out += progress[0]
        answered = client.answer(simple_response(error.status, f"airlock: {error.message}\n"))
        stats.bytes_in += answered
        why = f"{error.message} (cut upstream)"
        return _failed(client, record, stats, progress[0], answered, why, error.status)
    if sent < 0:
        return await _cut_short(
            client, record, stats, inspection, -1 - sent, "the client left mid-request"
        )
    stats.bytes_out += sent
    record["bytes_out"] = sent
    if inspection is not None:
        await inspection.finish(record)
    watcher = watcher_for(head.method, head.version, closes=not head.keep_alive)
    relayed = [0]  # what reached the client so far: a client gone mid-response got that much
    try:
        received = await _relay_response(client, upstream, watcher, relayed)
    except ResponseError as error:
        received = error.received
        if error.answerable:  # no final head reached the client: airlock answers (counted so)
            received += client.answer(simple_response(502, f"airlock: {head.host}: {error}\n"))
        else:  # its head went: cut, so that what the client got does not look whole
            cut_off(client.writer)
        stats.bytes_in += received
        return _failed(client, record, stats, sent, received, str(error), 502)
    except (ConnectionError, OSError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and not client.writer.is_closing():
            raise  # uvloop's word for a write to a closed transport; anything else is a bug
        stats.bytes_in += relayed[0]
        why = f"client went away: {error}"
        return _failed(client, record, stats, sent, relayed[0], why, watcher.status)
    stats.bytes_in += received
    record.update(status=watcher.status, bytes_in=received, error=None)
    if is_gateway(head.host):  # its refusal, in git's words, or its failure
        if watcher.refused is not None:
            record.update(decision="deny", reason=watcher.refused)
        elif watcher.failed is not None:
            record["error"] = watcher.failed
    client.finish(record)
    upstream.reusable = watcher.keep_alive and not watcher.until_close
    if carries:  # sent with ``Connection: close``: a destination that left the body unread
        upstream.reusable = False  # would read it as a request on a kept connection
    if not upstream.reusable:
        client.drop_upstream()
    return head.keep_alive and not watcher.until_close and not watcher.for_http10


async def _cut_short(
    client: Client,
    record: dict[str, Any],
    stats: HostStats,
    inspection: PlainInspection | None,
    sent: int,
    error: str,
) -> bool:
    """A request cut short after ``sent`` bytes of it went out: counted with the host's, its
    secrets among them (inspected), and recorded as :func:`_failed` does."""
    stats.bytes_out += sent
    if inspection is not None:
        await inspection.finish(record)
    return _failed(client, record, stats, sent, 0, error)


def _failed(
    client: Client,
    record: dict[str, Any],
    stats: HostStats,
    sent: int,
    received: int,
    error: str,
    status: int | None = None,
) -> bool:
    record.update(status=status, bytes_out=sent, bytes_in=received, error=client.aborted or error)
    client.finish(record)
    client.drop_upstream()
    return False


async def _screen(
    client: Client, head: RequestHead, record: dict[str, Any], inspection: PlainInspection
) -> tuple[bool, bytes | None]:
    """What inspection does before a request to an inspected host leaves: refuse it (its flow
    is off, or ``--secrets block`` found a secret), or let it go, with its body gathered and
    checked under ``--secrets redact`` or ``block``. Whether it goes, and that body."""
    has_body = bool(head.chunked or head.content_length)
    if not inspection.verdict.allowed:
        if has_body and not head.expect_continue:
            await _drain(client)  # read before answering: unread bytes would reset it
        await _refused(client, record, inspection.refusal(), inspection.verdict.reason)
        return False, None
    if not (inspection.gathers and has_body):
        return True, None
    too_large = inspection.too_large(head.content_length)
    if too_large:  # refused unread, as inside TLS
        await _refused(client, record, *_refusal(413, too_large))
        return False, None
    from airlock.egress.scan import BUSY

    if not inspection.held.take(head.content_length or 0):  # refused unread, as inside TLS
        await _refused(client, record, *_refusal(503, BUSY))
        return False, None
    if head.expect_continue:
        client.writer.write(CONTINUE)
        head.expect_continue = False
    gathered = await _gather(client, inspection)
    if gathered is None:
        _failed(client, record, client.proxy.stats(head.host), 0, 0, "the client left")
        return False, None
    if isinstance(gathered, Refusal):
        await _refused(client, record, *_refusal(gathered.status, gathered.reason))
        return False, None
    from airlock.egress.scan import check_in_worker

    if check_in_worker(gathered, head.header(b"content-encoding")):  # the others go on
        body, status, why = await asyncio.to_thread(inspection.check, gathered)
    else:
        body, status, why = inspection.check(gathered)
    if body is None:
        await _refused(client, record, *_refusal(status, why))
        return False, None
    head.chunked, head.content_length = False, len(body)
    return True, body


def _body_on_get(head: RequestHead) -> HttpError | None:
    """The refusal of a ``GET`` or ``HEAD`` with a body (:func:`refuse_a_body_on_get`: a
    server that does not read one takes it for a request of its own, never judged), or
    ``None``."""
    framing = ("chunked", 0) if head.chunked else ("length", head.content_length or 0)
    try:
        refuse_a_body_on_get(head.method.decode("latin-1"), framing)
    except HttpError as error:
        return error
    return None


async def _starts_request(client: Client, body: bytes | None) -> bool:
    """Whether a body sized by its length starts as a request does
    (:func:`~airlock.egress.cleartext.starts_request`, as in a tunnel in the clear): a server
    that ignores the length would read it as one. ``body``: gathered already; else its first
    pieces, until they tell (up to ``BODY_LINE_LIMIT`` bytes, or its end: the client's close
    ends it too, as a server would read it), are read and put back for :func:`_send_request`
    to send."""
    if body is not None:
        return bool(starts_request(body[:BODY_LINE_LIMIT], ended=len(body) <= BODY_LINE_LIMIT))
    held: list[bytes | End] = []
    start = b""
    told: bool | None = None
    while told is None:
        piece = await client.next_event()
        if isinstance(piece, bytes):
            held.append(piece)
            start += piece[: BODY_LINE_LIMIT - len(start)]
            told = starts_request(start)
        else:  # its end, or the client closed its side (the copy then finds it cut short)
            if piece is END:
                held.append(END)
            told = starts_request(start, ended=True)
    client.parser.events.extendleft(reversed(held))
    return told


async def _refused_with_body(
    client: Client, head: RequestHead, record: dict[str, Any], status: int, why: str
) -> bool:
    """Refuse a request before any of it leaves, its body read first (unread bytes would
    reset the answer), as :func:`_refused` does. A client waiting for ``100 Continue``
    (``Expect``) sends no body until then: it is answered at once, and the connection closed
    with the body unread (waiting to read it left the client without an answer until the
    idle limit), as inside TLS."""
    if (head.chunked or head.content_length) and not head.expect_continue:
        await _drain(client)
    return await _refused(client, record, *_refusal(status, why))


def _refusal(status: int, why: str) -> tuple[bytes, str, int]:
    """The answer to a body that inspection refused, why, and its status."""
    return simple_response(status, f"airlock: {why}\n", (("X-Airlock", "refused"),)), why, status


async def _refused(
    client: Client, record: dict[str, Any], answer: bytes, reason: str, status: int = 403
) -> bool:
    """Answer a request refused before it left (by inspection: its flow is off, its body
    holds secrets under ``--secrets block``, or is too large to check; a body a server might
    read as a request), log it, and end the connection.
    The answer is the request's ``bytes_in``, the host's too, as inside TLS."""
    client.writer.write(answer)
    record.update(status=status, decision="deny", reason=reason, bytes_in=len(answer))
    client.proxy.stats(record["host"]).bytes_in += len(answer)
    client.finish(record)
    with contextlib.suppress(ConnectionError):
        await client.writer.drain()
    return False


async def _drain(client: Client) -> None:
    """Read and drop a refused request's body (up to ``MAX_GATHERED``; nothing is kept)."""
    from airlock.egress.scan import MAX_GATHERED

    size = 0
    while size <= MAX_GATHERED:
        piece = await client.next_event()
        if not isinstance(piece, bytes):  # its end, or the client left
            return
        size += len(piece)


async def _gather(client: Client, inspection: PlainInspection) -> bytes | Refusal | None:
    """A request's whole body (``--secrets redact`` or ``block``), held within the run's
    budget of gathered bodies (:attr:`PlainInspection.held`, as inside TLS); ``None`` if the
    client left. Refused as soon as it passes ``MAX_GATHERED`` (``413``) or would pass the
    budget (``503``), the rest unread.

    It is written into one growing buffer whose bytes become the body without a copy
    (:meth:`io.BytesIO.getvalue` hands over its own when nothing else holds them), as inside
    TLS: the body is in memory once, as the budget counts it, never its pieces and their
    joined copy at once.
    """
    from airlock.egress.scan import BUSY, MAX_GATHERED, TOO_LARGE

    held = inspection.held
    gathered = io.BytesIO()
    size = 0
    while True:
        piece = await client.next_event()
        if piece is END:
            return gathered.getvalue()
        if not isinstance(piece, bytes):
            return None
        size += len(piece)
        if size > MAX_GATHERED:
            return Refusal(413, TOO_LARGE)
        if not held.cover(size):
            return Refusal(503, BUSY)
        gathered.write(piece)


async def _send_request(
    client: Client,
    head: RequestHead,
    upstream: Upstream,
    body: bytes | None = None,
    inspection: PlainInspection | None = None,
    progress: list[int] | None = None,
) -> int:
    """Send the rebuilt head and stream the body (or send ``body``, gathered and checked);
    bytes sent (negative: the client left, or the upload budget cut the request there).
    ``progress[0]`` follows the bytes sent, for the caller to count them when the body turns
    out malformed (:class:`BadRequest`). Each piece is charged to the upload budget before it
    leaves, whatever the body turns out to be; one that does not fit cuts the connection."""
    progress = progress if progress is not None else [0]
    writer = upstream.writer
    budget = client.proxy.budget
    # ``upstream.host``: the host as the rules read it, which was dialled (or asked for)
    data = forwarded_head(head, upstream.host if upstream.via_proxy else None, host=upstream.host)
    if len(data) > budget.left:
        client.abort(budget.spent())
        return -1
    budget.left -= len(data)
    writer.write(_with_credentials(client, upstream, data))
    sent = progress[0] = len(data)
    if body is not None:
        if len(body) > budget.left:
            client.abort(budget.spent())
            return -1 - sent
        budget.left -= len(body)
        return await _send_gathered(client, writer, body, sent, progress)
    pieces = 0
    while True:
        piece = await client.next_event()
        if piece is END:
            break
        if not isinstance(piece, bytes):
            return -1 - sent  # the client closed mid-body
        size = b"%x\r\n" % len(piece) if head.chunked else b""
        cost = len(piece) + (len(size) + 2 if head.chunked else 0)  # what leaves, framing too
        if cost > budget.left:
            client.abort(budget.spent())
            return -1 - sent
        budget.left -= cost
        if inspection is not None:
            await inspection.take(piece)
        if head.chunked:
            writer.writelines((size, piece, b"\r\n"))
        else:
            writer.write(piece)
        sent += cost
        progress[0] = sent
        await writer.drain()
        pieces += 1
        if pieces % YIELD_EVERY == 0:  # a read of tiny chunks is thousands of pieces
            await asyncio.sleep(0)
    if head.chunked:  # the last chunk leaves too: charged as the others
        if len(LAST_CHUNK) > budget.left:
            client.abort(budget.spent())
            return -1 - sent
        budget.left -= len(LAST_CHUNK)
        writer.write(LAST_CHUNK)
        sent += len(LAST_CHUNK)
    if writer.transport.get_write_buffer_size():  # as inside TLS: an origin that answered and
        await writer.drain()  # closed already would make the wait raise, its answer unread
    return sent


def _with_credentials(client: Client, upstream: Upstream, data: bytes) -> bytes:
    """A request head ``data`` as it leaves: to the upstream proxy (``--upstream-proxy``),
    with the ``Proxy-Authorization`` its URL's user and password make, as each ``CONNECT``
    to it carries (the client's own ``Proxy-*`` never go on: :func:`forwarded_head`).
    Those credentials are airlock's: neither charged to the upload budget nor counted in
    the record's ``bytes_out``, which say what code inside chose; never to a destination."""
    chained = client.proxy.upstream_proxy
    if not upstream.via_proxy or chained is None or chained.authorization is None:
        return data
    return data[:-2] + b"Proxy-Authorization: " + chained.authorization + b"\r\n\r\n"


async def _send_gathered(
    client: Client, writer: asyncio.StreamWriter, body: bytes, sent: int, progress: list[int]
) -> int:
    """Send a gathered body after ``sent`` bytes of its request, a piece at a time, each
    handed to the transport once the one before it has mostly gone (as inside TLS): written
    whole, the transport would hold a copy of what the socket did not take at once beside
    the body, memory no budget counts. ``progress[0]`` follows what was handed over, should
    the exchange fail; the bytes sent in all are returned."""

    def handed(length: int) -> None:
        nonlocal sent
        sent += length
        progress[0] = sent
        client.touch()  # a slow destination taking it is no idle client

    await write_in_pieces(writer, body, handed)
    if writer.transport.get_write_buffer_size():  # as for a streamed body: an origin that answered
        await writer.drain()  # and closed already would make the wait raise, its answer unread
    return sent


async def _relay_response(
    client: Client, upstream: Upstream, watcher: ResponseWatcher, relayed: list[int]
) -> int:
    """Copy the response to the client as it arrives, until httptools finds its end; the
    bytes passed on, kept in ``relayed`` as they go too (a client that goes away cuts it).

    The destination's bytes are taken where they arrive, in its protocol's ``data_received``
    (a :class:`_Relayed` is the connection's
    :attr:`~airlock.egress.connection.UpstreamProtocol.sink` meanwhile), and written to the
    client there, as a tunnel's are (:mod:`airlock.egress.relay`): no stream buffers them
    and no task is woken a read. This task waits for the end, or for the client's buffer to
    drain when it is full (the destination is not read meanwhile). What came before the
    request was sent whole (an early answer) is in the stream's reader, and taken first.

    Raises:
        ResponseError: the response is malformed, its head too large, its status below
            ``100`` (:class:`BadStatus`), its body framed by a coding that does not end in
            ``chunked`` (:class:`UnsupportedCoding`), cut short (the
            destination's close or reset, or the connection's abort here: the idle limit),
            or followed by bytes no request asked for in the same read
            (:attr:`ResponseWatcher.extra`); that read is not sent, nor a head not yet whole.
        ConnectionError, OSError, RuntimeError: the connection to the client failed (an
            abort here too: waiting for its buffer to drain, the response is then the
            client's to have cut, not the destination's).
    """
    protocol = upstream.protocol
    assert protocol is not None  # a forwarded request's connection is dialled with one
    relay = _Relayed(client, upstream, watcher, relayed)
    protocol.sink = relay
    try:
        reader = upstream.reader
        while upstream.taken < protocol.received and not relay.settled:
            relay.feed(await reader.read(READ_SIZE))  # in the reader already: read at once
        if reader.exception() is not None:  # the connection failed before: told now
            relay.ended(reader.exception())
        elif reader.at_eof():
            relay.ended(None if protocol.eof else ClosedHere())
        writer = client.writer
        while not await relay.wait():
            await writer.drain()
            if writer.transport.is_closing():  # drain() returns when an aborted one is lost
                raise ConnectionResetError("the client's connection was closed mid-response")
            relay.resume()
        return relay.received
    finally:
        protocol.sink = None
        relay.resume()  # a kept connection is read again (it was paused for a full client)


class _Relayed:
    """One response on its way to the client: the destination's bytes, fed as they come
    (:meth:`feed`), are watched for the response's end and written to the client."""

    def __init__(
        self, client: Client, upstream: Upstream, watcher: ResponseWatcher, relayed: list[int]
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.watcher = watcher
        self.relayed = relayed
        self.received = 0
        self.held: list[bytes] = []
        """A head not yet whole (it is bounded), sent with the bytes that end it."""
        self.rebuilt = False
        """The final head went to the client, without the destination's hop-by-hop headers
        (:func:`~airlock.egress.response.relayed_head`; rebuilt for an HTTP/1.0 client):
        a failure then cuts the connection, a second answer would be read as body bytes."""
        self.finished = False
        self.paused = False
        """The client's buffer is full: the destination is not read until it drains."""
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._destination = cast(asyncio.Transport, upstream.writer.transport)  # reads too

    async def wait(self) -> bool:
        """``True`` once the response has ended, ``False`` when the client's buffer is full.

        Raises:
            ResponseError: as :func:`_relay_response`.
            OSError, RuntimeError: the connection to the client failed.
        """
        while not self.settled and not self.paused:
            self._waiter = self.client.loop.create_future()
            await self._waiter
        if self.error is not None:
            if isinstance(self.error, ResponseError) and not self.rebuilt:
                self.error.answerable = True  # interim answers at most went: one may follow
            raise self.error
        return self.finished

    @property
    def settled(self) -> bool:
        """The response has ended, or failed."""
        return self.finished or self.error is not None

    def resume(self) -> None:
        """The client's buffer drained (or the response is over): read the destination
        again, if it was paused."""
        if self.paused:
            self.paused = False
            if not self._destination.is_closing():
                self._destination.resume_reading()

    def feed(self, data: bytes) -> None:
        """The destination's next bytes. After the response's end, bytes are left uncounted:
        the connection is then not used again (:func:`~airlock.egress.connection.stale`)."""
        if self.settled:
            return
        self.upstream.taken += len(data)
        try:
            self._relay(data)
        except (ResponseError, OSError, RuntimeError) as error:  # a closed client's transport
            self.error = error
        self._wake()

    def _wants_credentials(self, head: bytes) -> None:
        """The upstream proxy answered ``407`` (``head``, whole): about airlock's credentials
        (``--upstream-proxy``'s), not the client's, so not passed on (the client would take it
        as airlock asking for its own); said in a ``502``, as to a ``CONNECT``.

        Raises:
            ResponseError: always.
        """
        chained = self.client.proxy.upstream_proxy
        assert chained is not None  # a connection via the upstream proxy has one
        line = head.split(b"\r\n", 1)[0]
        raise ResponseError(chained.wants_credentials(shown_answer(line)), self.received)

    def ended(self, error: Exception | None) -> None:
        """The destination closed its side (``error`` ``None``), or the connection failed."""
        if self.settled:
            return
        if isinstance(error, ClosedHere):  # not the destination's end, whatever the framing
            self.error = ResponseError(
                "the connection to the destination was closed mid-response, on this side",
                self.received,
            )
        elif error is not None:  # a reset: the destination's failure, not the client's
            self.error = ResponseError(
                f"the connection to the destination failed mid-response: {error}", self.received
            )
        elif self.watcher.until_close:  # its end is the close
            self.finished = True
        else:
            self.error = ResponseError(
                "the destination closed the connection mid-response", self.received
            )
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _relay(self, data: bytes) -> None:
        watcher = self.watcher
        try:
            watcher.feed(data)
        except httptools.HttpParserUpgrade:  # a 101 (or a CONNECT's 2xx) to a plain request
            raise ResponseError(
                "the destination switched protocols (101), which a forwarded request cannot: "
                "not passed on",
                self.received,
            ) from None
        except httptools.HttpParserError as error:
            raise ResponseError(f"malformed response: {error}", self.received) from None
        except (HeadTooLarge, UnsupportedCoding, BadStatus) as error:
            raise ResponseError(str(error), self.received) from None
        if watcher.extra:
            raise ResponseError(
                "the destination sent more after its response (an answer no request asked "
                "for): not passed on",
                self.received,
            )
        held = self.held
        if watcher.in_head:  # held until the head is whole (it is bounded), sent with it
            held.append(data)
            return
        if held:
            held.append(data)
            data = b"".join(held)
            held.clear()
        span = watcher.head_span
        if span is not None and not self.rebuilt:  # the final head, whole: rebuilt once
            base = watcher.fed - len(data)  # the stream's offset of ``data``'s first byte
            start, end = max(span[0] - base, 0), span[1] - base
            head = data[start:end]
            if self.upstream.via_proxy and watcher.status == 407:
                self._wants_credentials(head)  # before any of it goes: airlock answers
            self.rebuilt = True
            rebuilt = relayed_head(head, closes=watcher.closes, until_close=watcher.until_close)
            if rebuilt is not head:
                data = data[:start] + rebuilt + data[end:]
        client = self.client
        transport = client.writer.transport
        if watcher.for_http10:
            out = watcher.take()  # the head rebuilt, the body decoded
            transport.writelines(out)
            written = sum(map(len, out))
            self.rebuilt = watcher.status is not None  # its final head is among them
        else:
            transport.write(data)
            written = len(data)
        self.received += written  # what the client got: the record's ``bytes_in``
        self.relayed[0] = self.received
        client.last_active = client.loop.time()
        if watcher.done:
            self.finished = True
        elif transport.get_write_buffer_size() > WRITE_BUFFER or transport.is_closing():
            self.paused = True  # as drain() would wait: above the high-water mark
            self._destination.pause_reading()
