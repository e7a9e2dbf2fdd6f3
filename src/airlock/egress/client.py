"""One client connection of the egress proxy: its requests in order, each a tunnel
(:mod:`airlock.egress.tunnels`) or a forwarded request (:mod:`airlock.egress.forwarding`), and
at most one upstream connection at a time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from airlock.egress.connection import (
    READ_SIZE,
    WRITE_BUFFER,
    Refusal,
    Upstream,
    malformed_record,
    refused_record,
)
from airlock.egress.forwarding import forward
from airlock.egress.http1 import (
    CONNECT,
    BadRequest,
    RequestHead,
    RequestParser,
    header_safe,
    redact_query,
    simple_response,
)
from airlock.egress.report import NO_HOST
from airlock.egress.rules import host_port, shown_host
from airlock.egress.tunnels import tunnel
from airlock.policy.hosts import MAX_NAME

if TYPE_CHECKING:
    from airlock.egress.inspect import Inspector
    from airlock.egress.relay import Relay
    from airlock.egress.server import Proxy


class Client:
    """One client connection: its requests in order, and at most one upstream at a time."""

    def __init__(
        self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.reader = reader
        self.writer = writer
        writer.transport.set_write_buffer_limits(WRITE_BUFFER)
        self.loop = asyncio.get_running_loop()
        self.parser = RequestParser(proxy.config.limits.max_header_bytes)
        self.last_active = self.loop.time()
        self.waiting: float | None = self.last_active
        """Since when the connection owes a whole request head (its opening, or the end of
        its previous answer), on the loop's clock; ``None`` while a request or a tunnel is
        under way (the idle limit bounds those). The watchdog holds a connection to it
        whatever bytes come: blank lines before a request begin none, and a byte now and
        then keeps the idle limit off."""
        self.upstream: Upstream | None = None
        self.relay: Relay | None = None
        self.aborted: str | None = None
        self.pending: dict[str, Any] | None = None
        """The record of the request or tunnel under way, until :meth:`finish` logs it: one
        that ends some other way is logged when the connection ends (nothing that left is
        ever without its record)."""

    def abort(self, why: str) -> None:
        """End the connection (and its upstream) now."""
        self.aborted = why
        self.writer.transport.abort()
        if self.relay is not None:
            self.relay.abort()
        if self.upstream is not None:
            self.upstream.writer.transport.abort()

    async def serve(self) -> None:
        """Serve the connection's requests until it ends; a malformed one is answered 4xx."""
        try:
            while await self._one():
                pass
        except BadRequest as error:
            answered = self.answer(simple_response(error.status, f"airlock: {error.message}\n"))
            if self.pending is not None:  # the request under way: its own record says so
                malformed = malformed_record(error)
                self.pending.update(
                    {key: malformed[key] for key in ("status", "decision", "reason", "error")}
                )
                self.answered(self.pending, answered)
                self.finish(self.pending)
            else:
                record = malformed_record(error)
                head = next((e for e in self.parser.events if isinstance(e, RequestHead)), None)
                if head is not None:  # its head read whole, in the read its body failed in
                    with contextlib.suppress(ValueError):  # as the rules read it, if they can
                        ruled = self.proxy.check_rules(head.host, head.port)
                        record.update(
                            method=head.method.decode("latin-1"), host=ruled.host, port=head.port
                        )
                        inspector = self.proxy.inspector
                        if (
                            head.method != CONNECT
                            and ruled.allowed
                            and inspector
                            and inspector.inspects(ruled.host)
                        ):
                            self._inspected_refusal(inspector, record, head, ruled.host)
                self.answered(record, answered)
                if record.get("inspected") and self.proxy.inspector is not None:
                    self.proxy.inspector.tally(record)  # with airlock's answer, as logged
                self.proxy.record(record)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except RuntimeError as error:  # uvloop: a write to a transport the client closed
            self.aborted = self.aborted or f"the client went away ({error})"
        finally:
            if self.pending is not None:
                self.pending["error"] = (
                    self.pending.get("error") or self.aborted or ("the client went away")
                )
                self.finish(self.pending)
            self.drop_upstream()
            self.writer.transport.abort() if self.aborted else self.writer.close()

    def head_too_slow(self, seconds: float) -> None:
        """End a connection that owed a whole request head for ``seconds`` (:attr:`waiting`):
        a client sending a byte now and then, or nothing, would hold its place (one of
        ``max_connections``) forever. One that sent some of it, or blank lines, is answered
        ``408``, with a record; one that sent nothing since (a kept connection its client no
        longer uses) is closed without a word, as a server ends a kept connection. The
        connection's task then reads the end and stops."""
        since, self.waiting = self.waiting, None  # said once
        if since is not None and self.last_active <= since and not self.parser.in_head:
            self.writer.close()
            return
        why = (
            f"the request line and headers were not whole within {seconds:g} s (of the "
            "connection's opening, or of the answer before)"
        )
        answered = self.answer(simple_response(408, f"airlock: {why}\n"))
        self.proxy.record(self.answered(refused_record(408, why, why), answered))
        self.writer.close()

    def drop_upstream(self) -> None:
        """Close the upstream connection, if any."""
        if self.upstream is not None:
            self.upstream.writer.transport.abort()
            self.upstream = None

    def touch(self) -> None:
        """Note activity on the connection (the idle watchdog reads it)."""
        self.last_active = self.loop.time()

    async def next_event(self) -> RequestHead | bytes | object | None:
        """The parser's next event (a head, a body piece, ``END``), or ``None`` at end of file."""
        parser = self.parser
        while not parser.events:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return None
            self.last_active = self.loop.time()
            parser.feed(data)
        return parser.events.popleft()

    async def _one(self) -> bool:
        self.waiting = self.loop.time()
        head = await self.next_event()
        self.waiting = None
        if head is None:
            return False
        if not isinstance(head, RequestHead):  # pragma: no cover - the parser orders events
            raise BadRequest(400, "request body without a request")
        if head.method == CONNECT:
            await self.next_event()  # the END of the CONNECT message
            await tunnel(self, head)
            return False
        return await forward(self, head)

    async def refuse(self, head: RequestHead, refusal: Refusal, record: dict[str, Any]) -> None:
        """Answer ``refusal`` (the rule and how to allow it) and log the refused request. The
        answer's bytes are its ``bytes_in``, the host's too (as an inspected request's
        refusal counts its answer); its hint is kept for the report (:meth:`HostStats.hint`)."""
        with contextlib.suppress(ValueError):  # as the rules read it, when it can be read
            record["host"] = self.proxy.check_rules(head.host, head.port).host
        what = "CONNECT to" if head.method == CONNECT else f"{head.method.decode()} to"
        # a name too long to be one is cut as shown_host cuts it, in no brackets: its cut
        # text holds a colon, but only an IPv6 address (never that long) gets them
        long = len(head.host) > MAX_NAME
        shown = f"{shown_host(head.host)}:{head.port}" if long else host_port(head.host, head.port)
        body = f"airlock: {what} {shown} refused: {refusal.reason}\n"
        if refusal.hint:
            body += f"airlock: {refusal.hint}\n"
        header = (("X-Airlock-Refused", header_safe(refusal.reason)),)
        answered = self.answer(simple_response(refusal.status, body, header))
        # airlock's own refusals (the rules, a limit, what cannot be checked, traffic stopped)
        # are denials; a destination that could not be reached (502, 504) is an error
        denied = refusal.status < 500 or refusal.status == 503
        record.update(
            status=refusal.status,
            decision="deny" if denied else "allow",
            reason=refusal.reason,
            error=None if denied else refusal.reason,
        )
        self.answered(record, answered)
        if denied:
            self.proxy.stats(record.get("host") or NO_HOST).hint(refusal.reason, refusal.hint)
        self.finish(record)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def answer(self, response: bytes) -> int:
        """Write airlock's own answer (a refusal) to the client, unless it went meanwhile: the
        bytes written, which the answer's record counts as ``bytes_in``."""
        if self.writer.is_closing():
            return 0
        self.writer.write(response)
        return len(response)

    def answered(self, record: dict[str, Any], size: int) -> dict[str, Any]:
        """Count airlock's own answer of ``size`` bytes in ``record``'s ``bytes_in`` and in
        its host's (a record with no host: :data:`NO_HOST`'s, as the report counts it), so
        the report's bytes stay the sums of the log's; ``record``."""
        record["bytes_in"] = record.get("bytes_in", 0) + size
        self.proxy.stats(record.get("host") or NO_HOST).bytes_in += size
        return record

    @staticmethod
    def _inspected_refusal(
        inspector: Inspector, record: dict[str, Any], head: RequestHead, host: str
    ) -> None:
        """The fields every request to an inspected host has in its record, added to the
        refusal of one whose head came whole with a malformed body in the same read: its path
        as the log shows it (query values and secrets left out), its flow, the secrets in its
        path and headers (kind and count). It is counted with its flow for the report once
        airlock's answer is in it (:meth:`serve`)."""
        from airlock.egress.scan import header_secrets, path_secrets  # the redaction engine

        target = head.path.decode("latin-1")
        path, in_path = path_secrets(inspector.redactor, target, redact_query(head.path))
        in_head, _ = header_secrets(inspector.redactor, head.headers)
        verdict = inspector.judge(record["method"], host, target, head.headers)
        secrets = Counter(in_path) + Counter(in_head)
        record.update(inspected=True, path=path, flow=verdict.flow, secrets=dict(secrets))

    def finish(self, record: dict[str, Any]) -> None:
        """Set the record's duration and log it."""
        self.pending = None
        record["duration_ms"] = round((time.time() - record["time"]) * 1000, 3)
        if record.get("inspected") and self.proxy.inspector is not None:
            if record.get("status") is None:  # no answer came: 0, as an inspected request's
                record["status"] = 0  # record says it (its status is always an int)
            self.proxy.inspector.tally(record)  # plain HTTP to an inspected host
        self.proxy.record(record)
