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
connection's last activity is noted; a watchdog closes those idle longer than the limit, and
those that have not sent a whole request head ``head_seconds`` after opening or after their
previous answer (``408`` to one that sent part of it, or only blank lines).
If the audit log fails, or the run's records pass their cap (``Limits.max_log_bytes``),
:meth:`Proxy.stop` ends every connection, and each new one is answered ``503`` saying why.

Here: :class:`Proxy`, what one run shares (rules, limits, counters, admission and dialling).
Each connection is a :class:`~airlock.egress.client.Client`; its tunnels are carried by
:mod:`airlock.egress.tunnels`, its plain requests by :mod:`airlock.egress.forwarding`; what
they share (buffer sizes, :class:`~airlock.egress.connection.Refusal`, the audit records) is
in :mod:`airlock.egress.connection`.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlock._sizes import human_size
from airlock._tasks import create_task
from airlock.egress.addresses import AddressCheck
from airlock.egress.audit import AuditLog
from airlock.egress.client import Client
from airlock.egress.config import (
    GATEWAY_HOST,
    EgressConfig,
    UpstreamProxy,
    is_gateway,
    shown_answer,
    upstream_proxy,
)
from airlock.egress.connection import (
    READ_SIZE,
    WRITE_BUFFER,
    ClientProtocol,
    Refusal,
    Upstream,
    open_upstream,
)
from airlock.egress.http1 import simple_response
from airlock.egress.limits import RateLimiter, UploadBudget
from airlock.egress.relay import Relay
from airlock.egress.report import MAX_HOSTS, NO_HOST, OTHER_HOSTS, HostStats, went_out
from airlock.egress.rules import (
    EgressRules,
    RuleDecision,
    host_port,
    private_name,
    private_name_refusal,
    private_refusal,
)
from airlock.errors import AirlockError, DestinationRefused, RefusedError
from airlock.policy.hosts import HostError, bypasses_proxy, parse_host

if TYPE_CHECKING:
    from airlock.redact import Redactor

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
"""Names of cloud metadata services (GCP's, AWS's, Tencent Cloud's), which resolve to a
metadata address on the cloud's machines. Through an upstream proxy, which resolves names
itself, they are refused by name: an upstream proxy on such a machine would reach the
metadata service that a direct connection is refused (its address is checked)."""

_OBJECT_ADDRESS = re.compile(r" (?:at )?0x[0-9a-f]+(?=>)")
"""The memory address in an object's text (``<TCPTransport closed=True 0x7f65…>``), which an
error's message may hold: left out of the records, so one error reads the same each time and
the report counts it once."""
_CLOSED_TRANSPORT = re.compile(r"unable to perform operation on <\w+[^>]*>; the handler is closed")
"""uvloop's words for a write to a connection that had closed, naming its own object."""
CLOSED_TRANSPORT = "the connection had already closed"
"""What a record says instead (:data:`_CLOSED_TRANSPORT`)."""


def plain_error(error: object) -> str:
    """An error's text as records and the report show it: no memory address, and no event
    loop's object where it says only that the connection had closed."""
    return _CLOSED_TRANSPORT.sub(CLOSED_TRANSPORT, _OBJECT_ADDRESS.sub("", str(error)))


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
        self.budget = UploadBudget(
            config.limits.max_upload_bytes,
            f"the upload budget of {config.limits.max_upload_mb or 0:g} MiB is used up "
            "(--max-upload-mb)",
        )
        self.hosts: dict[str, HostStats] = {}
        self.turned_away: Counter[str] = Counter()
        """Connections answered ``503`` before a byte of theirs was read (at
        ``max_connections``, or once traffic stopped: :meth:`stop`), by reason. Counted, not
        recorded one by one: a flood of connections, which the limit exists to turn away
        cheaply, would otherwise fill the log (and a failed log takes no record). The run's
        record and report carry the counts."""
        self.clients: dict[Client, asyncio.Task[Any] | None] = {}
        """The open connections, each with the task that serves it."""
        self.servers: list[asyncio.Server] = []
        self.failed: BaseException | None = None
        """Why the audit log could not be written, once it could not."""
        self.stopped: str | None = None
        """Why all traffic stopped, in words, once it did (the audit log failed, or the run's
        records reached their cap: :meth:`stop`)."""
        self.upstream_proxy = parse_upstream(config.upstream_proxy)
        """The upstream proxy with its credentials (``None``: connections go direct)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self.path_redactor: Redactor | None = None
        """The redaction engine that keeps secrets in plain requests' paths out of the log
        (:meth:`logged_path`), loaded when first needed."""
        self.inspector = None
        if config.inspection is not None:
            from airlock.egress.inspect import Inspector  # cryptography only when inspecting

            self.inspector = Inspector.from_config(
                config.inspection, self.record_inspected, self.budget
            )

    async def logged_path(self, target: str, logged: str) -> tuple[str, dict[str, int]]:
        """``logged`` (a request target as the log shows it, query values left out) with the
        secrets the redaction engine finds in ``target`` left out too, and their kinds and
        counts (:func:`airlock.egress.scan.path_secrets`). The engine is the inspector's, or
        one loaded once, off the event loop, at the first target that could hold a secret."""
        from airlock.egress.scan import path_secrets

        if self.path_redactor is None:
            if self.inspector is not None:
                self.path_redactor = self.inspector.redactor
            else:
                from airlock.redact import Redactor

                self.path_redactor = await asyncio.to_thread(Redactor)
        return path_secrets(self.path_redactor, target, logged)

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
        if self.stopped is not None or len(self.clients) >= self.config.limits.max_connections:
            why = (
                f"{self.stopped}: traffic stopped"
                if self.stopped is not None
                else f"more than {self.config.limits.max_connections} connections at once"
            )
            self.turned_away[why] += 1
            writer.write(simple_response(503, f"airlock: refused: {why}\n"))
            writer.close()
            return
        self.clients[client] = asyncio.current_task()
        try:
            await client.serve()
        except asyncio.CancelledError:
            # :meth:`shutdown` ended it mid-lookup or mid-dial, its record written: the task
            # ends here, for Python 3.11's streams ask a cancelled one for its exception
            # and print the traceback that raises
            pass
        finally:
            del self.clients[client]

    async def _watch_idle(self) -> None:
        """Close connections idle too long, and those that owe a request head too long
        (:attr:`Client.waiting <airlock.egress.client.Client.waiting>`: from the connection's
        opening or its previous answer, whatever bytes came meanwhile)."""
        idle = self.config.limits.idle_seconds
        head = self.config.limits.head_seconds
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, idle / 4, head / 4))
            now = loop.time()
            for client in list(self.clients):
                if now - client.last_active > idle:
                    client.abort(f"idle for more than {idle:g} s")
                elif client.waiting is not None and now - client.waiting > head:
                    client.head_too_slow(head)

    def stats(self, host: str) -> HostStats:
        """The counters of ``host``; past ``MAX_HOSTS`` hosts, the one entry of the others."""
        found = self.hosts.get(host)
        if found is None:
            if len(self.hosts) >= MAX_HOSTS:
                host = OTHER_HOSTS
                found = self.hosts.get(host)
            if found is None:
                found = self.hosts[host] = HostStats()
        return found

    def record(self, record: dict[str, Any]) -> None:
        """Log the record of a tunnel or a request, and count it for the report as its host's
        refusal (decision ``deny``) or error (allowed, with an error): the report's counts
        are the log's. An inspected request's refusal is counted by its reason up to the
        first ``": "`` (what refused it, without the details that differ request by
        request). The secrets an inspected request held are counted too, by kind (never a
        value), for the report's line on them (:meth:`HostStats.found`)."""
        if record.get("type") == "request" and went_out(record):
            self.stats(record.get("host") or NO_HOST).requests += 1
        if record.get("decision") == "deny":
            reason = str(record.get("reason") or "")
            if record.get("inspected"):
                reason = reason.split(": ", 1)[0]
            self.stats(record.get("host") or NO_HOST).refuse(reason)
        elif record.get("error"):
            record["error"] = plain_error(record["error"])
            self.stats(record.get("host") or NO_HOST).fail(record["error"])
        if record.get("secrets") and self.inspector is not None:  # kinds and counts only
            self.stats(record.get("host") or NO_HOST).found(record, self.inspector.secrets)
        if self.audit is not None:
            record["run"] = self.run_id
            self.audit.append(record)
            if self.audit.appended > self.config.limits.max_log_bytes and self.stopped is None:
                self._log_full()

    def _log_full(self) -> None:
        """Stop all traffic: the run's records passed their cap (``max_log_bytes``). Code
        inside chooses how many requests it makes and how long each one's record is, so
        without a cap it could fill the disk the log is on. Nothing is admitted from here on;
        the connections under way are ended at the loop's next turn (not inside the record
        of one of them), each with its record, so what was done stays on record."""
        cap = self.config.limits.max_log_bytes
        why = (
            f"this run's audit records passed their cap of {human_size(cap)} (a flood of "
            "requests would fill the disk the log is on)"
        )
        self.stopped = why
        asyncio.get_running_loop().call_soon(self.stop, why)

    def record_inspected(self, record: dict[str, Any]) -> None:
        """Count and log one record of an inspected connection (``egress.inspect``)."""
        stats = self.stats(record["host"])
        stats.bytes_out += record["bytes_out"]
        stats.bytes_in += record["bytes_in"]  # its upload was charged as it left
        self.record(record)

    def fail(self, error: BaseException) -> None:
        """Stop all traffic: the audit log cannot be written (called on the loop's thread)."""
        if self.failed is None:
            self.failed = error
        self.stop(f"the audit log failed ({error})")

    def stop(self, why: str) -> None:
        """Stop all traffic, saying ``why`` (the first reason is kept): every connection is
        ended. The listeners stay open: each new connection is answered ``503`` saying why,
        and counted (a closed listener refused them at the socket, a failure no client could
        tell from a proxy that is not there)."""
        if self.stopped is None:
            self.stopped = why
        for client in list(self.clients):
            client.abort(why)

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
        left = [task for task in self.clients.values() if task is not None]
        for task in [*left, *self._tasks]:  # those still setting up (a name's lookup, a
            task.cancel()  # dial) end too, each writing the record of what it was doing
        if left:
            await asyncio.wait(left, timeout=1.0)

    def check_rules(self, host: str, port: int) -> RuleDecision:
        """The host rules' answer; the git gateway's name is allowed when a gateway runs."""
        if self.config.gateway is not None and is_gateway(host):
            reason = "the git credential gateway (--repo): it grants repositories itself"
            return RuleDecision(host, port, "allow", reason, explicit=True)
        return self.rules.check(host, port)

    async def admit(self, host: str, port: int) -> tuple[RuleDecision, str | None]:
        """Decide a new connection to ``host:port``: rules, limits, then the address check.
        The rate's token is taken before the address check (a client past the rate costs no
        lookup) and given back when the check refuses: only connections dialled count.

        Returns:
            The rules' decision and the checked address to dial (``None`` when chaining).

        Raises:
            Refusal: the connection is refused, with the status and reason.
        """
        gateway = is_gateway(host)  # never resolved, never dialled by name
        if gateway and self.config.gateway is None:
            raise Refusal(403, f"{GATEWAY_HOST} is the git gateway's name; no --repo here")
        decision = self.check_rules(host, port)
        if not decision.allowed:
            raise Refusal(403, decision.reason, decision.hint)
        if self.stopped is not None:
            raise Refusal(503, f"{self.stopped}: traffic stopped")
        if not self.budget.admit():
            raise Refusal(403, self.budget.reason)
        if not self.rate.admit(decision.host, time.monotonic()):
            rate = self.config.limits.new_connections_per_second
            raise Refusal(
                429,
                f"more than {rate:g} new connections per second to {decision.host}",
                f"--new-connections-per-second {rate:g} sets that limit: wait a moment and "
                "try again, or run again with a higher one",
            )
        if gateway:
            return decision, None  # the gateway: no address to check
        try:
            return decision, await self._address(decision, port)
        except Refusal:
            self.rate.give_back(decision.host)  # never dialled: the rate is not used up
            raise

    async def _address(self, decision: RuleDecision, port: int) -> str | None:
        """The address check of :meth:`admit`: the checked address to dial (``None`` when
        the upstream proxy resolves the name).

        Raises:
            Refusal: the address (or the lookup's cost) is refused.
        """
        private_ok = self.config.allow_private and decision.explicit
        if self.via_upstream(decision.host):
            if decision.host in METADATA_NAMES:
                raise Refusal(
                    403,
                    f"{decision.host} names a cloud metadata service",
                    "a cloud metadata service is never reached, whatever the rules",
                )
            if _known_without_lookup(decision.host):  # an address, or a loopback name
                await self._checked(decision.host, port, private_ok)
            elif not private_ok and (what := private_name(decision.host)) is not None:
                lock = self.config.managed_lock
                raise Refusal(403, *private_name_refusal(decision.host, what, lock))
            return None  # a name: the upstream proxy resolves it
        if self.budget.limit is not None and not _known_without_lookup(decision.host):
            self._charge_lookup(decision.host)  # (no budget: nothing to charge, no test)
        address = await self._checked(decision.host, port, private_ok)
        denied = self.rules.denied(address, port) if address != decision.host else None
        if denied is not None:
            reason = f"{decision.host} resolves to {address}, denied by {denied.describe()}"
            raise Refusal(403, reason)
        return address

    def _charge_lookup(self, name: str) -> None:
        """Charge a name about to be looked up to the upload budget: the resolver's query
        carries it off the machine, and code inside chooses it where a wildcard rule or
        ``--allow-all`` lets it.

        Raises:
            Refusal: ``403``: the name does not fit in what is left.
        """
        budget = self.budget
        if len(name) > budget.left:
            raise Refusal(403, budget.spent())
        budget.left -= len(name)

    async def _checked(self, host: str, port: int, private_ok: bool) -> str:
        """The address check (:attr:`check`); the address to dial.

        Raises:
            Refusal: ``403`` for an address no rule allows, ``502`` when there is none.
        """
        try:
            address = await self.check(host, port, private_ok)
        except DestinationRefused as error:
            lock = self.config.managed_lock
            refused = private_refusal(error.host, error.address, error.address_class, lock)
            raise Refusal(403, *refused) from None
        except RefusedError as error:
            raise Refusal(403, str(error)) from None
        except AirlockError as error:
            raise Refusal(502, str(error)) from None
        return address

    def via_upstream(self, host: str) -> bool:
        """Whether connections to ``host`` go through the upstream proxy (not in ``NO_PROXY``)."""
        return self.upstream_proxy is not None and not bypasses_proxy(host, self.config.no_proxy)

    async def chain(self, upstream: Upstream, host: str, port: int) -> None:
        """Ask the upstream proxy, on ``upstream`` (a connection to it), for a tunnel to
        ``host:port`` as the rules read it, with the ``Proxy-Authorization`` of its URL's
        user and password. What code inside chose (the line and its ``Host``) is charged to
        the upload budget first; the credentials are airlock's, neither charged nor shown.
        The answer is awaited ``connect_timeout`` seconds at most: an upstream proxy that
        takes the connection and says nothing would otherwise hold the client's place (one
        of ``max_connections``), unanswered, until the run ends.

        Raises:
            Refusal: ``403`` when the ``CONNECT`` does not fit in the budget; ``502`` when
                the upstream proxy answers anything but ``2xx`` (``407``: saying where its
                credentials go), closes or answers what is not HTTP; ``504`` when it does not
                answer in time.
        """
        proxy = self.upstream_proxy
        assert proxy is not None  # only connections to the upstream proxy come here
        authority = host_port(host, port).encode()
        line = b"CONNECT " + authority + b" HTTP/1.1\r\nHost: " + authority + b"\r\n"
        if len(line) + 2 > self.budget.left:
            upstream.writer.transport.abort()
            raise Refusal(403, self.budget.spent())
        self.budget.left -= len(line) + 2
        if proxy.authorization is not None:
            line += b"Proxy-Authorization: " + proxy.authorization + b"\r\n"
        upstream.writer.write(line + b"\r\n")
        asked = f"the CONNECT to {authority.decode()}"
        status_line = await self._chain_answer(upstream, proxy, asked)
        status = _status(status_line)
        if status is not None and 200 <= status < 300:
            return
        upstream.writer.transport.abort()
        shown = shown_answer(status_line)
        if status is None:
            why = f"the upstream proxy {proxy.shown} answered {asked} with no HTTP status: {shown}"
            raise Refusal(502, why)
        if status == 407:  # the way on, in the reason: the report shows an error's reason alone
            raise Refusal(502, proxy.wants_credentials(shown))
        raise Refusal(502, f"the upstream proxy {proxy.shown} refused {asked}: {shown}")

    async def _chain_answer(self, upstream: Upstream, proxy: UpstreamProxy, asked: str) -> bytes:
        """The status line of the upstream proxy's final answer to ``asked`` (interim ``1xx``
        answers passed over), its head read whole, within ``connect_timeout`` seconds. The
        heads' bytes are counted as taken (:attr:`Upstream.taken`): what came beyond them
        is the destination's, or no answer at all (:func:`~airlock.egress.connection.stale`
        tells; inside TLS to be inspected, nothing may come before it).

        Raises:
            Refusal: ``504`` when it is not there in time; ``502`` when the upstream proxy
                closes first, or sends a head past the stream's limit.
        """
        timeout = self.config.limits.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                while True:
                    answer = await upstream.reader.readuntil(b"\r\n\r\n")
                    upstream.taken += len(answer)
                    status_line = answer.split(b"\r\n", 1)[0]
                    status = _status(status_line)
                    if status is None or status >= 200:
                        return status_line
        except TimeoutError:
            why = f"the upstream proxy {proxy.shown} did not answer {asked} within {timeout:g} s"
            failure = Refusal(504, why)
        except asyncio.LimitOverrunError:
            why = f"the upstream proxy {proxy.shown} answered {asked} with a head past its limit"
            failure = Refusal(502, why)
        except asyncio.IncompleteReadError as error:
            how = "in the middle of its answer" if error.partial else "without an answer"
            why = f"the upstream proxy {proxy.shown} closed the connection {how} to {asked}"
            failure = Refusal(502, why)
        except OSError as error:
            why = f"the upstream proxy {proxy.shown} failed {asked}: {error.strerror or error}"
            failure = Refusal(502, why)
        upstream.writer.transport.abort()
        raise failure

    async def dial_relay(self, host: str, port: int, address: str | None, relay: Relay) -> None:
        """Connect the relay's destination side to the checked ``address`` (direct tunnels).

        Raises:
            Refusal: ``502``/``504`` when the connection cannot be made.
        """
        if address is None:  # pragma: no cover - admit gives an address to every tunnel
            raise Refusal(403, f"{host}: no checked address to connect to")
        timeout = self.config.limits.connect_timeout
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: relay.destination, str(address), port
                )
        except TimeoutError:
            raise Refusal(
                504, f"no connection to {_dialled(host, port)} within {timeout:g} s"
            ) from None
        except OSError as error:
            why = f"cannot connect to {_dialled(host, port)}: {error.strerror or error}"
            raise Refusal(502, why) from None
        transport.set_write_buffer_limits(WRITE_BUFFER)
        self.stats(host).connections += 1

    async def dial(self, host: str, port: int, address: str | None) -> Upstream:
        """Connect to the checked ``address`` (or to the upstream proxy).

        Raises:
            Refusal: ``502``/``504`` when the connection cannot be made.
        """
        chained = self.upstream_proxy
        gateway = self.config.gateway if is_gateway(host) else None
        via_proxy = gateway is None and chained is not None and self.via_upstream(host)
        target = chained.address if via_proxy and chained is not None else (str(address), port)
        timeout = self.config.limits.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                # the gateway: outside the sandbox, on a socket only airlock's user reaches
                reader, writer, protocol = await open_upstream(
                    str(gateway) if gateway is not None else target, READ_SIZE
                )
            writer.transport.set_write_buffer_limits(WRITE_BUFFER)
        except TimeoutError:
            dialled = _dialled(host, port, chained if via_proxy else None)
            raise Refusal(504, f"no connection to {dialled} within {timeout:g} s") from None
        except OSError as error:
            dialled = _dialled(host, port, chained if via_proxy else None)
            raise Refusal(502, f"cannot connect to {dialled}: {error.strerror or error}") from None
        self.stats(host).connections += 1
        return Upstream(host, port, reader, writer, via_proxy=via_proxy, protocol=protocol)


def _dialled(host: str, port: int, chained: UpstreamProxy | None = None) -> str:
    """What a failed dial failed to reach, in words: the destination, or the upstream proxy
    (``chained``) that would have reached it; an IPv6 address in brackets, apart from its
    port."""
    destination = host_port(host, port)
    if chained is None:
        return destination
    return f"the upstream proxy {chained.shown} (for {destination})"


def parse_upstream(url: str | None) -> UpstreamProxy | None:
    """The upstream proxy, with its credentials (:func:`upstream_proxy`; ``None``: no chaining).

    Raises:
        UsageError: ``url`` is not an ``http://`` URL with a host.
    """
    return None if url is None else upstream_proxy(url)


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")


def _status(line: bytes) -> int | None:
    """The status of an HTTP/1 status line, or ``None``: it is not one."""
    match = _STATUS_LINE.fullmatch(line)
    return None if match is None else int(match[1])


def _known_without_lookup(host: str) -> bool:
    """Whether ``host`` (canonical) is an address, a name that is loopback by definition
    (``localhost`` and its subdomains, RFC 6761), or one this machine names itself (its host
    name, a name in ``/etc/hosts``: :func:`local_names`): checked even when an upstream proxy
    would resolve the others (one on this machine reads the same ``/etc/hosts``)."""
    if host == "localhost" or host.endswith(".localhost") or host in local_names():
        return True
    try:
        return parse_host(host).address is not None
    except HostError:
        return False


@functools.cache
def local_names(hosts_file: str = "/etc/hosts") -> frozenset[str]:
    """The names this machine gives addresses itself: its host name and fully qualified name,
    and every name in ``hosts_file`` (lowercase, without a final dot). Read once."""
    names = {socket.gethostname().lower().rstrip(".")}
    try:
        text = Path(hosts_file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        names.update(field.lower().rstrip(".") for field in fields[1:])
    names.discard("")
    return frozenset(names)
