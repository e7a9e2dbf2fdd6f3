"""``CONNECT`` tunnels: admitted like any connection, then bytes copied both ways untouched
until both sides have closed (by :class:`~airlock.egress.relay.Relay` when dialled directly, by
two stream copies through an upstream proxy), or handed to the inspector (``--inspect``).
One audit record per tunnel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airlock._tasks import create_task
from airlock.egress.cleartext import CleartextRequests, Opening, host_of, opening
from airlock.egress.config import GATEWAY_HOST, is_gateway
from airlock.egress.connection import (
    ESTABLISHED,
    READ_SIZE,
    ClientProtocol,
    Refusal,
    Upstream,
    new_record,
    stale,
)
from airlock.egress.framing import HttpError
from airlock.egress.http1 import RequestHead
from airlock.egress.relay import Check, Relay, Watch
from airlock.egress.rules import shown_host
from airlock.policy.hosts import MAX_NAME

if TYPE_CHECKING:
    from airlock.egress.client import Client

MAX_NAMES = 16
"""The other names a tunnel's client asked for that its record lists (``server_names``); the
rest are counted (``server_names_more``)."""


async def tunnel(client: Client, head: RequestHead) -> None:
    """Admit the ``CONNECT`` in ``head``, answer ``200`` and carry the tunnel until it ends."""
    proxy = client.proxy
    record = client.pending = new_record("tunnel", head)
    try:
        inspector = proxy.inspector
        if inspector is not None:
            ruled = proxy.check_rules(head.host, head.port)
            if ruled.allowed and inspector.inspects(ruled.host):
                client.pending = None  # a record for each request inside instead
                await _inspect(client, head, ruled.host)
                return
        if is_gateway(head.host):  # git reaches it with plain HTTP; a tunnel has no use
            raise Refusal(403, f"{GATEWAY_HOST}: the git gateway takes plain HTTP, not CONNECT")
        decision, address = await proxy.admit(head.host, head.port)
        record["host"], record["reason"] = decision.host, decision.reason
        if address is not None and address != decision.host:
            record["address"] = address  # the one dialled, as the name resolved
        if not proxy.via_upstream(decision.host):
            relay = Relay(proxy.budget, client.touch)
            await proxy.dial_relay(decision.host, head.port, address, relay)
        else:
            upstream = await proxy.dial(decision.host, head.port, address)
            await proxy.chain(upstream, decision.host, head.port)  # as the rules read it
    except Refusal as refusal:
        await client.refuse(head, refusal, record)
        return
    if not proxy.via_upstream(decision.host):
        await _relay(client, decision.host, relay, record)
    else:
        await _chained(client, head, decision.host, upstream, record)


async def _chained(
    client: Client, head: RequestHead, host: str, upstream: Upstream, record: dict[str, Any]
) -> None:
    """Answer ``200`` and copy both ways through the upstream proxy's tunnel."""
    proxy = client.proxy
    client.upstream = upstream
    stats = proxy.stats(host)
    client.writer.write(ESTABLISHED)
    early = client.parser.tunnel_data or b""
    counts = [0, 0]
    refused: list[str] = []
    watching: list[Watch] = []
    check = _name_check(client, host, head.port, record, watching.append)
    outward = create_task(
        _gated_pipe(client, early, upstream, counts, check, watching, refused),
        name=f"tunnel out {head.host}:{head.port}",
    )
    try:
        inward_error = await _pipe(client, upstream.reader, client.writer, counts, 1)
        error = await outward or inward_error
    finally:
        outward.cancel()
        stats.bytes_out += counts[0]
        stats.bytes_in += counts[1]
    if refused:
        _refused_inside(client, record, refused[0], counts, error)
        return
    record.update(
        status=200,
        bytes_out=counts[0],
        bytes_in=counts[1],
        error=client.aborted or error,
    )
    client.finish(record)


def _name_check(
    client: Client,
    host: str,
    port: int,
    record: dict[str, Any],
    watch: Callable[[Watch], None],
) -> Check:
    """The check of a tunnel's first bytes (see :attr:`Relay.check`). A server answers as the
    name the client asks for, whatever address the ``CONNECT`` reached (one address of a CDN
    serves all of its sites): the name its TLS asks for (SNI), or, for HTTP sent in the
    clear, the host each request names (:class:`~airlock.egress.cleartext.CleartextRequests`,
    handed to ``watch`` to read every later byte too). A name other than ``host`` (the
    tunnel's, as the rules read it) is judged by :func:`_other_name` and kept in the record:
    the first one as ``server_name``, each one in :func:`_named`; TLS whose hello cannot be
    read is refused. With ``--allow-all`` too: a deny rule still refuses its name, and the
    record still names it (every one: a tunnel in the clear may name a host per request)."""

    def verdict(name: str) -> str:
        canonical = host_of(name)
        if canonical == host:
            return ""
        shown = shown_host(canonical)  # a name past 253 characters is cut in the record
        record.setdefault("server_name", shown)
        _named(record, shown)
        if len(canonical) > MAX_NAME:
            return (
                f"the client in this tunnel to {host} asks for {shown}: no host name is that long"
            )
        return _other_name(client, host, port, canonical)

    def check(data: bytes | bytearray, ended: bool = False) -> str | None:
        kind = opening(data, verdict, ended=ended)
        if kind is Opening.MORE:
            return None
        if kind is Opening.HTTP:
            watch(CleartextRequests(verdict))
        return "" if isinstance(kind, Opening) else kind

    return check


def _named(record: dict[str, Any], name: str) -> None:
    """Keep ``name``, another name the tunnel's client asked for, in its record: the first
    :data:`MAX_NAMES` distinct ones in ``server_names``, in the order asked; past those, each
    time a name not among them is asked for is counted in ``server_names_more`` (not told
    apart: a tunnel may name a new host in every request)."""
    names: list[str] = record.setdefault("server_names", [])
    if name in names:
        return
    if len(names) < MAX_NAMES:
        names.append(name)
    else:
        record["server_names_more"] = record.get("server_names_more", 0) + 1


def _other_name(client: Client, host: str, port: int, name: str) -> str:
    """Why a tunnel to ``host`` whose client asks the server for ``name`` is refused, or
    ``""``: the rules refuse ``name`` (at the tunnel's port), or it is an inspected host,
    whose requests must pass the flow check."""
    proxy = client.proxy
    if proxy.inspector is not None and proxy.inspector.inspects(name):
        return (
            f"the client in this tunnel to {host} asks for {name}, an inspected host: "
            f"refused (CONNECT to {name} itself, and its requests are inspected)"
        )
    decision = proxy.check_rules(name, port)
    if decision.allowed:
        return ""
    return (
        f"the client in this tunnel to {host} asks for {name}, which the rules refuse "
        f"({decision.reason}): refused, as a server at {host}'s address would answer as {name}"
    )


def _refused_inside(
    client: Client,
    record: dict[str, Any],
    reason: str,
    counts: list[int],
    error: str | None = None,
) -> None:
    """The record of a tunnel refused after its ``200`` (its TLS or a request sent in the
    clear named a host it may not reach, or its TLS could not be read): the client saw the
    connection close. ``counts``: the bytes that passed each way (requests in the clear that
    came first, and answers to them), in the record as in the host's totals; ``error``: how
    the tunnel ended otherwise (bytes refused at the client's close leave it open for those
    answers, until the destination closes or the idle limit ends it)."""
    record.update(
        status=403,
        decision="deny",
        reason=reason,
        bytes_out=counts[0],
        bytes_in=counts[1],
        error=client.aborted or error,
    )
    client.finish(record)


async def _relay(client: Client, host: str, relay: Relay, record: dict[str, Any]) -> None:
    """Answer ``200`` and let the relay copy the tunnel's bytes until both sides close."""
    client.relay = relay
    client.writer.write(ESTABLISHED)
    relay.check = _name_check(client, host, record["port"], record, relay.watch_client)
    transport = client.writer.transport
    stream_protocol = transport.get_protocol()
    relay.attach_client(transport)  # type: ignore[arg-type]
    client.reader.feed_eof()  # the reader gets nothing more: hand on what it still holds
    try:
        early = (client.parser.tunnel_data or b"") + await client.reader.read()
    except OSError:
        early = b""
    if early:
        relay.client.data_received(early)
    if isinstance(stream_protocol, ClientProtocol) and stream_protocol.eof_seen:
        relay.client.eof_received()
    await relay.done
    stats = client.proxy.stats(host)
    stats.bytes_out += relay.counts[0]
    stats.bytes_in += relay.counts[1]
    if relay.refused is not None:
        _refused_inside(client, record, relay.refused, relay.counts, relay.error)
        return
    record.update(
        status=200,
        bytes_out=relay.counts[0],
        bytes_in=relay.counts[1],
        error=client.aborted or relay.error,
    )
    client.finish(record)


async def _inspect(client: Client, head: RequestHead, host: str) -> None:
    """Hand a CONNECT the host rules allow to the inspector (``--inspect``): it reads the
    TLS and checks each request's flow. The rest of the admission (limits, the address
    check) and the dial wait for the first request that must go out, as mitmproxy's lazy
    connections do: a request the engine refuses needs no name lookup and no route."""
    proxy = client.proxy
    assert proxy.inspector is not None  # checked by the caller
    if client.parser.tunnel_data:
        raise Refusal(400, "TLS sent before the CONNECT was answered: cannot be inspected")
    from airlock.egress.inspected import BEFORE_TLS  # loaded with the inspector

    async def dial(_host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The connection TLS to the origin starts on, with nothing unread on it: bytes
        there (an upstream proxy's after its ``200``) would be read, once TLS began, as the
        origin's answer, which TLS never carried (:data:`BEFORE_TLS`)."""
        try:
            decision, address = await proxy.admit(host, port)
            upstream = await proxy.dial(decision.host, port, address)
            if upstream.via_proxy:
                await proxy.chain(upstream, decision.host, port)  # as the rules read it
        except Refusal as refusal:
            if refusal.status < 500 or refusal.status == 503:  # airlock's own: a denial
                raise HttpError(refusal.status, refusal.reason) from None
            raise ConnectionError(refusal.reason) from None  # the origin not reached
        client.upstream = upstream
        if stale(upstream):
            raise ConnectionError(BEFORE_TLS)
        return upstream.reader, upstream.writer

    await proxy.inspector.intercept(
        client.reader,
        client.writer,
        host,
        head.port,
        dial=dial,
        activity=client.touch,
        established=ESTABLISHED,
    )


async def _gated_pipe(
    client: Client,
    early: bytes,
    upstream: Upstream,
    counts: list[int],
    check: Check | None,
    watching: list[Watch],
    refused: list[str],
) -> str | None:
    """The client's side of a chained tunnel: its first bytes held until ``check`` says
    (see :attr:`Relay.check`; the upstream's bytes flow meanwhile), then :func:`_pipe`, each
    piece read by the watch the check may have put in ``watching``. A refusal goes in
    ``refused``, and both sides are closed."""
    held = bytearray(early)
    verdict = "" if check is None else check(held, False)
    while verdict is None:
        try:
            more = await client.reader.read(READ_SIZE)
        except OSError as failure:  # the client reset while its first bytes were held
            upstream.writer.transport.abort()
            return str(failure) or type(failure).__name__
        held += more
        verdict = "" if check is None else check(held, not more)  # at the end: told now
    watch = watching[0] if watching else None
    passed: bytes | bytearray = held
    if not verdict and held and watch is not None:
        passed, verdict = watch.feed(held)
    if verdict:
        _refuse_chained(client, upstream.writer, refused, verdict)
        return None
    if passed:
        budget = client.proxy.budget
        if len(passed) > budget.left:
            client.abort(budget.spent())
            return budget.reason
        budget.left -= len(passed)
        upstream.writer.write(bytes(passed))
        counts[0] += len(passed)
    return await _pipe(client, client.reader, upstream.writer, counts, 0, watch, refused)


def _refuse_chained(
    client: Client, upstream: asyncio.StreamWriter, refused: list[str], reason: str
) -> None:
    refused.append(reason)
    client.writer.close()
    upstream.close()


async def _pipe(
    client: Client,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counts: list[int],
    index: int,
    watch: Watch | None = None,
    refused: list[str] | None = None,
) -> str | None:
    """Copy ``reader`` to ``writer`` until end of file, then half-close ``writer``.

    Returns:
        Why the copy stopped early (a reset, a broken pipe, the upload budget: the client's
        side, ``index`` 0, is charged before each piece leaves), or ``None`` at end of file
        or when ``watch`` refused a piece (its reason put in ``refused``, both sides closed;
        at end of file, what it still held and refused is dropped, and answers to what went
        before still come).
    """
    budget = client.proxy.budget if index == 0 else None
    loop = client.loop
    try:
        while True:
            data: bytes | bytearray = await reader.read(READ_SIZE)
            if data and watch is not None and refused is not None:
                data, reason = watch.feed(data)
                if reason:
                    _refuse_chained(client, writer, refused, reason)
                    return None
                if not data:
                    continue
            elif not data:
                if watch is None or refused is None:
                    break
                data, reason = watch.end()  # what it still holds, told as it ends
                watch = None
                if reason:  # the rest is dropped; answers to what went before still come
                    refused.append(reason)
                if not data:
                    break
            if budget is not None:
                if len(data) > budget.left:
                    client.abort(budget.spent())
                    return budget.reason
                budget.left -= len(data)
            writer.write(data)
            counts[index] += len(data)
            client.last_active = loop.time()
            await writer.drain()
    except OSError as failure:  # ConnectionError included
        writer.transport.abort()
        return str(failure) or type(failure).__name__
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(OSError):
            writer.write_eof()
    return None
