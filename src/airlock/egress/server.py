"""The egress proxy: one asyncio task per client connection, on its own event loop and thread.

Theory of operation
-------------------
A client connection is read into a :class:`~airlock.egress.http1.RequestParser`; each request
it yields is one of two kinds.

* ``CONNECT host:port``: the rules decide (:class:`~airlock.egress.rules.EgressRules`), then the
  limits (upload budget, new connections per second per host), then the address check
  (:mod:`airlock.egress.addresses`: resolve once, refuse private and metadata addresses),
  and only then is the checked address dialled (or the upstream proxy asked to). ``200`` goes
  back, and bytes are copied both ways untouched until both sides have closed. One audit
  record per tunnel.
* ``GET http://host/path`` and the like: the same checks, then the request is rebuilt
  (:func:`~airlock.egress.http1.forwarded_head`) and its body streamed upstream piece by
  piece; the response is streamed back as it arrives, its end found by httptools. The
  upstream connection is kept for the client's next request to the same ``host:port``. One
  audit record per request.

Nothing is buffered beyond one read (``READ_SIZE``) and the transports' flow-control limits:
every write is followed by ``drain()``. A refused request is answered ``403`` (``429`` for the
rate limit) with the reason and how to allow it, and the client connection is closed. Every
connection's last activity is noted; a watchdog closes those idle longer than the limit.
If the audit log fails, :meth:`Proxy.fail` stops the listeners and aborts every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any

import httptools

from airlock._tasks import create_task
from airlock.egress.addresses import AddressCheck
from airlock.egress.audit import AuditLog
from airlock.egress.config import EgressConfig
from airlock.egress.http1 import (
    CONNECT,
    END,
    BadRequest,
    RequestHead,
    RequestParser,
    forwarded_head,
    redact_query,
    simple_response,
)
from airlock.egress.limits import RateLimiter, UploadBudget
from airlock.egress.relay import Relay
from airlock.egress.report import HostStats
from airlock.egress.rules import EgressRules, RuleDecision, how_to_allow
from airlock.errors import AirlockError, RefusedError

READ_SIZE = 256 * 1024
WRITE_BUFFER = 1024 * 1024
"""A transport's write buffer may hold this much before ``drain()`` waits (asyncio's default,
64 KiB, is a quarter of one read: bulk transfers would stop and start on every read)."""
GATEWAY_HOST = "git.airlock.internal"
"""The git credential gateway's name (``egress.gateway.GATEWAY_HOST``)."""
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


class Proxy:
    """The proxy's state for one run: rules, limits, counters, open connections.

    Args:
        config: what to allow and the limits.
        audit: the log records go to, or ``None`` (no log).
        run_id: the run's id, in every record.
        check: the address check (:data:`~airlock.egress.addresses.AddressCheck`).
    """

    def __init__(
        self, config: EgressConfig, audit: AuditLog | None, run_id: str, check: AddressCheck
    ) -> None:
        self.config = config
        self.audit = audit
        self.run_id = run_id
        self.check = check
        self.rules = EgressRules(config)
        self.rate = RateLimiter(config.limits.new_connections_per_second)
        self.budget = UploadBudget(config.limits.max_upload_bytes)
        self.hosts: dict[str, HostStats] = {}
        self.clients: dict[Client, None] = {}
        self.servers: list[asyncio.Server] = []
        self.failed: BaseException | None = None
        self.chained = _parse_upstream(config.upstream_proxy)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.inspector = None
        if config.inspection is not None:
            from airlock.egress.inspect import Inspector  # cryptography only when inspecting

            self.inspector = Inspector.from_config(config.inspection, self.record_inspected)

    async def start(self, listeners: list[socket.socket]) -> None:
        """Serve every listening socket, and start the idle watchdog."""
        loop = asyncio.get_running_loop()

        def connection() -> ClientProtocol:  # what asyncio.start_server builds, noting EOF
            return ClientProtocol(asyncio.StreamReader(READ_SIZE, loop), self._serve, loop)

        for listener in listeners:
            self.servers.append(await loop.create_server(connection, sock=listener))
        create_task(self._watch_idle(), name="egress idle watchdog", keep=self._tasks)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Client(self, reader, writer)
        if self.failed is not None or len(self.clients) >= self.config.limits.max_connections:
            why = (
                f"the audit log failed ({self.failed}): traffic stopped"
                if self.failed is not None
                else f"more than {self.config.limits.max_connections} connections at once"
            )
            writer.write(simple_response(503, f"airlock: refused: {why}\n"))
            writer.close()
            return
        self.clients[client] = None
        try:
            await client.serve()
        finally:
            del self.clients[client]

    async def _watch_idle(self) -> None:
        idle = self.config.limits.idle_seconds
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, idle / 4))
            now = loop.time()
            for client in list(self.clients):
                if now - client.last_active > idle:
                    client.abort(f"idle for more than {idle:g} s")

    def stats(self, host: str) -> HostStats:
        found = self.hosts.get(host)
        if found is None:
            found = self.hosts[host] = HostStats()
        return found

    def record(self, record: dict[str, Any]) -> None:
        if self.audit is not None:
            record["run"] = self.run_id
            self.audit.append(record)

    def record_inspected(self, record: dict[str, Any]) -> None:
        """Count and log one record of an inspected connection (``egress.inspect``)."""
        stats = self.stats(record["host"])
        if record["type"] == "request":
            stats.requests += 1
        stats.bytes_out += record["bytes_out"]
        stats.bytes_in += record["bytes_in"]
        self.budget.spend(record["bytes_out"])
        if record["decision"] == "deny":
            stats.refused[record["reason"].split(": ", 1)[0]] += 1
        elif record["error"]:
            stats.refused[record["error"]] += 1
        self.record(record)

    def fail(self, error: BaseException) -> None:
        """Stop all traffic: the audit log cannot be written (called on the loop's thread)."""
        if self.failed is None:
            self.failed = error
        for server in self.servers:
            server.close()
        for client in list(self.clients):
            client.abort(f"the audit log failed: {error}")

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, give open connections ``grace`` seconds, then end them."""
        for server in self.servers:
            server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self.clients and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for client in list(self.clients):
            client.abort("the run ended")
        while self.clients and asyncio.get_running_loop().time() < deadline + 1.0:
            await asyncio.sleep(0.01)
        for task in list(self._tasks):
            task.cancel()

    def check_rules(self, host: str, port: int) -> RuleDecision:
        """The host rules' answer; the git gateway's name is allowed when a gateway runs."""
        if self.config.gateway is not None and host == GATEWAY_HOST:
            reason = "the git credential gateway (--repo): it grants repositories itself"
            return RuleDecision(host, port, "allow", reason, explicit=True)
        return self.rules.check(host, port)

    async def admit(self, host: str, port: int) -> tuple[RuleDecision, str | None]:
        """Decide a new connection to ``host:port``: rules, limits, then the address check.

        Returns:
            The rules' decision and the checked address to dial (``None`` when chaining).

        Raises:
            Refusal: the connection is refused, with the status and reason.
        """
        decision = self.check_rules(host, port)
        if decision.rule is None and decision.allowed and host == GATEWAY_HOST:
            return decision, None  # the gateway: no address to check
        if not decision.allowed:
            raise Refusal(403, decision.reason, how_to_allow(decision.host, port))
        if self.failed is not None:
            raise Refusal(503, f"the audit log failed ({self.failed}): traffic stopped")
        if not self.budget.admit():
            limit = self.config.limits.max_upload_mb
            raise Refusal(403, f"the upload budget of {limit:g} MB is used up (--max-upload-mb)")
        if not self.rate.admit(decision.host, time.monotonic()):
            rate = self.config.limits.new_connections_per_second
            raise Refusal(429, f"more than {rate:g} new connections per second to {decision.host}")
        if self.chained is not None:
            return decision, None
        private_ok = self.config.allow_private and decision.explicit
        try:
            address = await self.check(decision.host, port, private_ok)
        except RefusedError as error:
            raise Refusal(403, str(error)) from None
        except AirlockError as error:
            raise Refusal(502, str(error)) from None
        return decision, address

    async def dial_relay(self, host: str, port: int, address: str | None, relay: Relay) -> None:
        """Connect the relay's destination side to the checked ``address`` (direct tunnels).

        Raises:
            Refusal: ``502``/``504`` when the connection cannot be made.
        """
        timeout = self.config.limits.connect_timeout
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: relay.destination, str(address), port
                )
        except TimeoutError:
            raise Refusal(504, f"no connection to {host}:{port} within {timeout:g} s") from None
        except OSError as error:
            raise Refusal(
                502, f"cannot connect to {host}:{port}: {error.strerror or error}"
            ) from None
        transport.set_write_buffer_limits(WRITE_BUFFER)
        self.stats(host).connections += 1

    async def dial(self, host: str, port: int, address: str | None) -> Upstream:
        """Connect to the checked ``address`` (or to the upstream proxy).

        Raises:
            Refusal: ``502``/``504`` when the connection cannot be made.
        """
        target = (address, port) if self.chained is None else self.chained
        if self.config.gateway is not None and host == GATEWAY_HOST:
            target = self.config.gateway  # on this host's loopback, outside the sandbox
        timeout = self.config.limits.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(*target, limit=READ_SIZE)
            writer.transport.set_write_buffer_limits(WRITE_BUFFER)
        except TimeoutError:
            raise Refusal(504, f"no connection to {host}:{port} within {timeout:g} s") from None
        except OSError as error:
            raise Refusal(
                502, f"cannot connect to {host}:{port}: {error.strerror or error}"
            ) from None
        self.stats(host).connections += 1
        return Upstream(host, port, reader, writer)


def _parse_upstream(url: str | None) -> tuple[str, int] | None:
    if url is None:
        return None
    parsed = httptools.parse_url(url.encode())
    if parsed.schema not in (b"http", None) or not parsed.host:
        raise AirlockError(f"upstream proxy {url!r}: expected http://HOST:PORT")
    return parsed.host.decode(), parsed.port or 8080


class ClientProtocol(asyncio.StreamReaderProtocol):
    """The stream protocol of a client connection, which also notes that the client half-closed.

    A tunnel takes the transport over from the stream (:mod:`airlock.egress.relay`); an end of
    file the stream already received must then be passed on by hand.
    """

    eof_seen = False

    def eof_received(self) -> bool:
        self.eof_seen = True
        return bool(super().eof_received())


class Client:
    """One client connection: its requests in order, and at most one upstream at a time."""

    def __init__(
        self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy = proxy
        self.reader = reader
        self.writer = writer
        writer.transport.set_write_buffer_limits(WRITE_BUFFER)
        self.parser = RequestParser(proxy.config.limits.max_header_bytes)
        self.loop = asyncio.get_running_loop()
        self.last_active = self.loop.time()
        self.upstream: Upstream | None = None
        self.relay: Relay | None = None
        self.aborted: str | None = None

    def abort(self, why: str) -> None:
        """End the connection (and its upstream) now."""
        self.aborted = why
        self.writer.transport.abort()
        if self.relay is not None:
            self.relay.abort()
        if self.upstream is not None:
            self.upstream.writer.transport.abort()

    async def serve(self) -> None:
        try:
            while await self._one():
                pass
        except BadRequest as error:
            self.proxy.record(_malformed(error))
            with contextlib.suppress(ConnectionError):
                self.writer.write(simple_response(error.status, f"airlock: {error.message}\n"))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._drop_upstream()
            self.writer.transport.abort() if self.aborted else self.writer.close()

    def _drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.writer.transport.abort()
            self.upstream = None

    async def _next(self) -> RequestHead | bytes | object | None:
        parser = self.parser
        while not parser.events:
            data = await self.reader.read(READ_SIZE)
            if not data:
                return None
            self.last_active = self.loop.time()
            parser.feed(data)
        return parser.events.popleft()

    async def _one(self) -> bool:
        head = await self._next()
        if head is None:
            return False
        if not isinstance(head, RequestHead):  # pragma: no cover - the parser orders events
            raise BadRequest(400, "request body without a request")
        if head.method == CONNECT:
            await self._next()  # the END of the CONNECT message
            await self._tunnel(head)
            return False
        return await self._forward(head)

    # refusals ------------------------------------------------------------------------------

    async def _refuse(self, head: RequestHead, refusal: Refusal, record: dict[str, Any]) -> None:
        stats = self.proxy.stats(head.host)
        stats.refused[refusal.reason] += 1
        what = "CONNECT to" if head.method == CONNECT else f"{head.method.decode()} to"
        body = f"airlock: {what} {head.host}:{head.port} refused: {refusal.reason}\n"
        if refusal.hint:
            body += f"airlock: {refusal.hint}\n"
        header = (("X-Airlock-Refused", _header_safe(refusal.reason)),)
        self.writer.write(simple_response(refusal.status, body, header))
        record.update(
            status=refusal.status,
            decision="deny" if refusal.status in (403, 429) else "allow",
            reason=refusal.reason,
            error=None if refusal.status in (403, 429) else refusal.reason,
        )
        self._finish(record)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def _finish(self, record: dict[str, Any]) -> None:
        record["duration_ms"] = round((time.time() - record["time"]) * 1000, 3)
        self.proxy.record(record)

    # CONNECT ---------------------------------------------------------------------------------

    async def _tunnel(self, head: RequestHead) -> None:
        record = _record("tunnel", head)
        try:
            inspector = self.proxy.inspector
            if inspector is not None:
                ruled = self.proxy.check_rules(head.host, head.port)
                if ruled.allowed and inspector.inspects(ruled.host):
                    await self._inspect(head, ruled.host)
                    return
            decision, address = await self.proxy.admit(head.host, head.port)
            record["reason"] = decision.reason
            if self.proxy.chained is None:
                relay = Relay(self.proxy.budget, self._touch)
                await self.proxy.dial_relay(decision.host, head.port, address, relay)
            else:
                upstream = await self.proxy.dial(decision.host, head.port, address)
                await _chain_connect(upstream, head)
        except Refusal as refusal:
            await self._refuse(head, refusal, record)
            return
        if self.proxy.chained is None:
            await self._relay(decision.host, relay, record)
            return
        self.upstream = upstream
        stats = self.proxy.stats(decision.host)
        self.writer.write(ESTABLISHED)
        early = self.parser.tunnel_data or b""
        counts = [0, 0]
        if early:
            upstream.writer.write(early)
            counts[0] += len(early)
            self.proxy.budget.spend(len(early))
        outward = create_task(
            self._pipe(self.reader, upstream.writer, counts, 0),
            name=f"tunnel out {head.host}:{head.port}",
        )
        try:
            inward_error = await self._pipe(upstream.reader, self.writer, counts, 1)
            error = await outward or inward_error
        finally:
            outward.cancel()
            stats.bytes_out += counts[0]
            stats.bytes_in += counts[1]
        record.update(
            status=200,
            bytes_out=counts[0],
            bytes_in=counts[1],
            error=self.aborted or error,
        )
        self._finish(record)

    async def _relay(self, host: str, relay: Relay, record: dict[str, Any]) -> None:
        """Answer ``200`` and let the relay copy the tunnel's bytes until both sides close."""
        self.relay = relay
        self.writer.write(ESTABLISHED)
        transport = self.writer.transport
        stream_protocol = transport.get_protocol()
        relay.attach_client(transport)  # type: ignore[arg-type]
        self.reader.feed_eof()  # the reader gets nothing more: hand on what it still holds
        try:
            early = (self.parser.tunnel_data or b"") + await self.reader.read()
        except OSError:
            early = b""
        if early:
            relay.client.data_received(early)
        if isinstance(stream_protocol, ClientProtocol) and stream_protocol.eof_seen:
            relay.client.eof_received()
        await relay.done
        stats = self.proxy.stats(host)
        stats.bytes_out += relay.counts[0]
        stats.bytes_in += relay.counts[1]
        record.update(
            status=200,
            bytes_out=relay.counts[0],
            bytes_in=relay.counts[1],
            error=self.aborted or relay.error,
        )
        self._finish(record)

    def _touch(self) -> None:
        self.last_active = self.loop.time()

    async def _inspect(self, head: RequestHead, host: str) -> None:
        """Hand a CONNECT the host rules allow to the inspector (``--inspect``): it reads the
        TLS and checks each request's flow. The rest of the admission (limits, the address
        check) and the dial wait for the first request that must go out, as mitmproxy's lazy
        connections do: a request the engine refuses needs no name lookup and no route."""
        assert self.proxy.inspector is not None  # checked by the caller
        if self.parser.tunnel_data:
            raise Refusal(400, "TLS sent before the CONNECT was answered: cannot be inspected")

        async def dial(_host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            try:
                decision, address = await self.proxy.admit(host, port)
                upstream = await self.proxy.dial(decision.host, port, address)
                if self.proxy.chained is not None:
                    await _chain_connect(upstream, head)
            except Refusal as refusal:
                raise ConnectionError(refusal.reason) from None
            self.upstream = upstream
            return upstream.reader, upstream.writer

        def touch() -> None:
            self.last_active = self.loop.time()

        await self.proxy.inspector.intercept(
            self.reader,
            self.writer,
            host,
            head.port,
            dial=dial,
            activity=touch,
            established=ESTABLISHED,
        )

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        counts: list[int],
        index: int,
    ) -> str | None:
        """Copy ``reader`` to ``writer`` until end of file, then half-close ``writer``.

        Returns:
            Why the copy stopped early (a reset, a broken pipe), or ``None`` at end of file.
        """
        budget = self.proxy.budget if index == 0 else None
        loop = self.loop
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                writer.write(data)
                counts[index] += len(data)
                if budget is not None:
                    budget.spend(len(data))
                self.last_active = loop.time()
                await writer.drain()
        except OSError as failure:  # ConnectionError included
            writer.transport.abort()
            return str(failure) or type(failure).__name__
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()
        return None

    # plain HTTP ------------------------------------------------------------------------------

    async def _forward(self, head: RequestHead) -> bool:
        """Forward one request and its response; whether the client connection goes on."""
        record = _record("request", head)
        record["path"] = redact_query(head.path)
        proxy = self.proxy
        upstream = self.upstream
        try:
            if (
                upstream is None
                or not upstream.reusable
                or (upstream.host, upstream.port)
                != (
                    head.host,
                    head.port,
                )
            ):
                self._drop_upstream()
                decision, address = await proxy.admit(head.host, head.port)
                upstream = self.upstream = await proxy.dial(decision.host, head.port, address)
            else:
                decision = proxy.check_rules(head.host, head.port)
                if not decision.allowed:  # pragma: no cover - same host:port as admitted
                    raise Refusal(403, decision.reason)
                if not proxy.budget.admit():
                    limit = proxy.config.limits.max_upload_mb
                    raise Refusal(
                        403, f"the upload budget of {limit:g} MB is used up (--max-upload-mb)"
                    )
        except Refusal as refusal:
            await self._refuse(head, refusal, record)
            return False
        record["reason"] = decision.reason
        stats = proxy.stats(decision.host)
        stats.requests += 1
        if head.expect_continue:
            self.writer.write(CONTINUE)
        try:
            sent = await self._send_request(head, upstream)
        except (ConnectionError, OSError) as error:
            return self._failed(record, stats, 0, 0, f"upstream write failed: {error}")
        if sent < 0:
            return self._failed(record, stats, -1 - sent, 0, "the client left mid-request")
        stats.bytes_out += sent
        record["bytes_out"] = sent
        watcher = ResponseWatcher(head.method)
        received = 0
        try:
            received = await self._relay_response(upstream, watcher)
        except ResponseError as error:
            stats.bytes_in += error.received
            if error.received == 0:
                self.writer.write(simple_response(502, f"airlock: {head.host}: {error}\n"))
            return self._failed(record, stats, sent, error.received, str(error), 502)
        except (ConnectionError, OSError) as error:
            return self._failed(record, stats, sent, received, f"client went away: {error}")
        stats.bytes_in += received
        record.update(status=watcher.status, bytes_in=received, error=None)
        self._finish(record)
        upstream.reusable = watcher.keep_alive and not watcher.until_close
        if not upstream.reusable:
            self._drop_upstream()
        return head.keep_alive and not watcher.until_close

    def _failed(
        self,
        record: dict[str, Any],
        stats: HostStats,
        sent: int,
        received: int,
        error: str,
        status: int | None = None,
    ) -> bool:
        record.update(status=status, bytes_out=sent, bytes_in=received, error=self.aborted or error)
        self._finish(record)
        self._drop_upstream()
        return False

    async def _send_request(self, head: RequestHead, upstream: Upstream) -> int:
        """Send the rebuilt head and stream the body; bytes sent (negative: the client left)."""
        writer = upstream.writer
        data = forwarded_head(head, absolute=self.proxy.chained is not None)
        writer.write(data)
        sent = len(data)
        budget = self.proxy.budget
        while True:
            piece = await self._next()
            if piece is END:
                break
            if not isinstance(piece, bytes):
                return -1 - sent  # the client closed mid-body
            if head.chunked:
                writer.writelines((b"%x\r\n" % len(piece), piece, b"\r\n"))
                sent += len(piece) + 4 + len(b"%x" % len(piece))
            else:
                writer.write(piece)
                sent += len(piece)
            budget.spend(len(piece))
            await writer.drain()
        if head.chunked:
            writer.write(b"0\r\n\r\n")
            sent += 5
        budget.spend(len(data))
        await writer.drain()
        return sent

    async def _relay_response(self, upstream: Upstream, watcher: ResponseWatcher) -> int:
        """Copy the response to the client as it arrives, until httptools finds its end."""
        received = 0
        reader = upstream.reader
        writer = self.writer
        loop = self.loop
        while not watcher.done:
            data = await reader.read(READ_SIZE)
            if not data:
                if watcher.until_close:
                    break
                raise ResponseError("the destination closed the connection mid-response", received)
            try:
                watcher.feed(data)
            except httptools.HttpParserError as error:
                raise ResponseError(f"malformed response: {error}", received) from None
            writer.write(data)
            received += len(data)
            self.last_active = loop.time()
            await writer.drain()
        return received


class ResponseError(Exception):
    """The destination's response could not be relayed; ``received`` bytes already were."""

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received


class ResponseWatcher:
    """Follows one response through httptools to find where it ends (bytes pass untouched)."""

    def __init__(self, method: bytes) -> None:
        self.head_only = method == b"HEAD"
        self.parser = httptools.HttpResponseParser(self)
        self.status: int | None = None
        self.done = False
        self.keep_alive = True
        self.until_close = False
        self._framed = False

    def feed(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            self._framed = False
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only:
            self.done = True
            self.keep_alive = False  # where a HEAD answer ends is not checked: no reuse
        elif not self._framed and status not in (204, 304):
            self.until_close = True

    def on_message_complete(self) -> None:
        if self.status is not None:
            self.done = True


async def _chain_connect(upstream: Upstream, head: RequestHead) -> None:
    """Ask the upstream proxy for a tunnel to ``head``'s host and port.

    Raises:
        Refusal: ``502`` when the upstream proxy says anything but ``2xx``.
    """
    authority = f"{head.host}:{head.port}".encode()
    upstream.writer.write(
        b"CONNECT " + authority + b" HTTP/1.1\r\nHost: " + authority + b"\r\n\r\n"
    )
    try:
        answer = await upstream.reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
        upstream.writer.transport.abort()
        raise Refusal(502, f"the upstream proxy did not answer CONNECT ({error})") from None
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].startswith("2"):
        upstream.writer.transport.abort()
        raise Refusal(502, f"the upstream proxy refused the tunnel: {status_line}")


def _record(kind: str, head: RequestHead) -> dict[str, Any]:
    return {
        "type": kind,
        "time": time.time(),
        "duration_ms": 0.0,
        "method": head.method.decode("latin-1"),
        "host": head.host,
        "port": head.port,
        "status": None,
        "decision": "allow",
        "reason": "",
        "bytes_out": 0,
        "bytes_in": 0,
        "error": None,
    }


def _malformed(error: BadRequest) -> dict[str, Any]:
    return {
        "type": "request",
        "time": time.time(),
        "duration_ms": 0.0,
        "method": None,
        "host": "",
        "port": 0,
        "status": error.status,
        "decision": "deny",
        "reason": f"malformed request: {error.message}",
        "bytes_out": 0,
        "bytes_in": 0,
        "error": error.message,
    }


def _header_safe(text: str) -> str:
    return "".join(char if 32 <= ord(char) < 127 else "?" for char in text)[:300]
