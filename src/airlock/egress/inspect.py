"""Inspection of TLS to named hosts: every request named by its flow, enforced and recorded.

Theory of operation
-------------------
When a CONNECT for an inspected host has been admitted by the proxy's host rules and answered
``200``, the proxy hands the client's connection to :meth:`Inspector.intercept`. The inspector
terminates TLS with a leaf from the run's CA (``egress.ca``) and hands the connection to an
:class:`~airlock.egress.inspected.InspectedConnection`, which reads its HTTP/1.1 requests
one after another, classifies and enforces each by flow, forwards it to the origin over
verified TLS and writes one audit record per request (see that module). The inspector holds
what the run's connections share: the CA, upstream trust, the engine's decisions, the
redaction engine, and the traffic counted by flow for the end-of-run report.

A client that refuses the run's certificate (certificate pinning, or no trust in the bundle)
fails its handshake; that is recorded with the host named, and :attr:`Inspector.refused_by_client`
lists such hosts for the report. A client whose TLS asked (SNI) for another name than the
host its ``CONNECT`` named, and then failed, is recorded as such (a client that verifies
refuses a certificate for another name than it asked for), not as one that pins; one that
goes on has its requests sent to the ``CONNECT``'s host, whose name airlock gives the origin
(a ``Host`` header naming another host is refused).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from airlock.egress.ca import OtherName, RunCA
from airlock.egress.connection import open_upstream
from airlock.egress.flows import (
    DEFAULT_AGENT,
    DEFAULT_API_HOSTS,
    FlowSummary,
    Signature,
    Verdict,
    compare,
    flows_at,
    host_overrides,
    off_flow,
    off_rows,
    off_rows_at,
    some_part_off,
    url_overrides,
    verdict_for,
)
from airlock.egress.framing import MAX_HEAD
from airlock.egress.inspected import Dial, InspectedConnection, record_of
from airlock.egress.limits import UploadBudget
from airlock.egress.report import (
    HostStats,
    Uninspected,
    count_reason,
    failed_before_it_left,
    refused_certificate,
)
from airlock.egress.scan import Budget, SecretsMode
from airlock.policy import Decisions
from airlock.policy.hosts import HostError, parse_host
from airlock.redact import Redactor

Record = Callable[[dict[str, Any]], None]
"""Takes one audit record (the proxy's audit log)."""

HANDSHAKE_TIMEOUT = 15.0
"""Seconds a client has to finish its TLS handshake with the run's certificate."""


async def default_dial(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection, without the proxy's address checks (tests and benchmarks),
    counting what comes as the proxy's own do (:func:`~airlock.egress.connection.open_upstream`)."""
    reader, writer, _ = await open_upstream((host, port), MAX_HEAD)
    return reader, writer


@dataclass(frozen=True, slots=True)
class InspectionConfig:
    """What a run's proxy needs to inspect: hosts, the CA, upstream trust, the decisions."""

    hosts: frozenset[str]
    ca: RunCA
    upstream: ssl.SSLContext
    decisions: Decisions
    secrets: SecretsMode = SecretsMode.REPORT
    redactor: Redactor | None = None
    api_hosts: frozenset[str] = DEFAULT_API_HOSTS
    agent: str = DEFAULT_AGENT


def _canonical(host: str) -> str:
    """``host`` as the rules name it (:func:`airlock.policy.hosts.parse_host`), or as given
    when it is no valid host (then no connection is allowed to it anyway)."""
    try:
        return parse_host(host).text
    except HostError:
        return host


class Inspector:
    """Reads, enforces and records the requests of inspected TLS connections.

    Args:
        ca: The run's CA (leaves for inspected hosts).
        upstream: The TLS client context for origins (``ca.upstream_context``).
        decisions: The policy engine's decisions for this run.
        record: Where each audit record goes.
        secrets: What a secret in a request body does.
        redactor: The redaction engine (settings' rules); the built-in rules by default.
        api_hosts: Hosts that stand for the vendor API in the signature table.
        agent: Whose signature table classifies requests.
        dial: Opens TCP to an origin (the proxy's dialler with its address checks).
        budget: The run's upload budget (``--max-upload-mb``), charged before each piece of a
            request leaves; none by default.
        wall: The wall clock, for record times.
        clock: A monotonic clock, for durations.
    """

    def __init__(
        self,
        ca: RunCA,
        upstream: ssl.SSLContext,
        decisions: Decisions,
        record: Record,
        *,
        secrets: SecretsMode = SecretsMode.REPORT,
        redactor: Redactor | None = None,
        api_hosts: frozenset[str] = DEFAULT_API_HOSTS,
        agent: str = DEFAULT_AGENT,
        dial: Dial = default_dial,
        budget: UploadBudget | None = None,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ca = ca
        self.upstream = upstream
        self.decisions = decisions
        self.record = record
        self.secrets = secrets
        self.redactor = redactor or Redactor(body_readings=True)
        self.api_hosts = api_hosts
        self.agent = agent
        self._off_rows: dict[str, tuple[Signature, ...]] = {}
        """Per host, the signature rows of flows that are off (the decisions hold for the run)."""
        self._part_off = some_part_off(decisions)
        """The engine refuses a part of ``model_requests`` at the vendor's own API host (model
        calls, the start-up configuration, what no row names): :meth:`_at_vendor_api` reads
        the paths and hosts a request's headers name there too."""
        self.dial = dial
        self.budget = budget or UploadBudget(None)
        self.wall = wall
        self.clock = clock
        self.hosts: frozenset[str] = frozenset()
        self.refused_by_client: dict[str, str] = {}
        """Hosts whose clients refused the run's certificate, with the TLS error."""
        self.flows: dict[tuple[str, str, bool], list[int]] = {}
        """(flow, decision, failed before it left) -> [requests, bytes out, bytes in], for the
        end-of-run report."""
        self.gathering = Budget()
        self.unchecked: Counter[str] = Counter()
        """Bodies not read decoded to their end for secrets, by why (the records' ``unchecked``)."""
        """The bytes of request bodies gathered to be checked, across connections."""

    @classmethod
    def from_config(
        cls, config: InspectionConfig, record: Record, budget: UploadBudget | None = None
    ) -> Inspector:
        """The inspector a run's proxy uses, recording to ``record``, its uploads charged to
        ``budget``."""
        inspector = cls(
            config.ca,
            config.upstream,
            config.decisions,
            record,
            secrets=config.secrets,
            redactor=config.redactor,
            api_hosts=config.api_hosts,
            agent=config.agent,
            budget=budget,
        )
        inspector.hosts = frozenset(_canonical(host) for host in config.hosts)
        return inspector

    def tally(self, record: Mapping[str, Any]) -> None:
        """Count one request record by flow and decision, and by why its body was not read
        to its end for secrets, if it was not."""
        failed = failed_before_it_left(record)  # counted apart by flows.compare
        row = self.flows.setdefault((record["flow"], record["decision"], failed), [0, 0, 0])
        row[0] += 1
        row[1] += record["bytes_out"]
        row[2] += record["bytes_in"]
        if record.get("unchecked"):
            count_reason(self.unchecked, record["unchecked"])

    def flow_summaries(self) -> list[FlowSummary]:
        """Traffic by flow next to the engine's prediction, with the differences flagged."""
        rows = [
            {
                "flow": flow,
                "decision": decision,
                "error": "failed before it left" if failed else None,
                "count": n,
                "bytes_out": out,
                "bytes_in": in_,
            }
            for (flow, decision, failed), (n, out, in_) in self.flows.items()
        ]
        return compare(rows, self.decisions)

    def uninspected(self, hosts: Mapping[str, HostStats]) -> list[Uninspected]:
        """The hosts of ``hosts`` (the proxy's, by name as the rules read it) that
        connections reached without inspection though the agent's table names flows there
        (the vendor API's, its metrics', error reports' or updates' hosts): what those
        carried is in no flow's count, so the report says so, and how to count it."""
        found = []
        for host, stats in hosts.items():
            if not stats.connections or self.inspects(host):
                continue
            flows = flows_at(host, agent=self.agent, api_hosts=self.api_hosts)
            if flows:
                found.append(Uninspected(host, stats.connections, flows))
        return sorted(found)

    def judge(
        self, method: str, host: str, path: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Verdict:
        """The flow of a request to an inspected host, and whether the engine lets it out
        (``headers``: the request's, for the paths and hosts a server may route it by
        instead, :func:`~airlock.egress.flows.url_overrides` and
        :func:`~airlock.egress.flows.host_overrides`)."""
        verdict = verdict_for(
            method, host, path, self.decisions, agent=self.agent, api_hosts=self.api_hosts
        )
        if not verdict.allowed:
            return verdict
        # Read any other way a server might, by any method, at any host it might route to:
        # one of a flow that is off is refused as that flow (no spelling of a refused
        # request gets out as another).
        rows = self._off_rows.get(host)
        if rows is None:
            rows = self._off_rows[host] = off_rows(
                host, self.decisions, agent=self.agent, api_hosts=self.api_hosts
            )
        # The rows off at the hosts headers name, all at once (not kept: any name may come),
        # less this host's: a head of thousands of names reads the path twice, not each time.
        named = [other for other in host_overrides(headers) if other != host]
        elsewhere = tuple(
            row
            for row in off_rows_at(
                named, self.decisions, agent=self.agent, api_hosts=self.api_hosts
            )
            if row not in rows
        )
        vendor = self._part_off and (bool(named) or host in DEFAULT_API_HOSTS)
        if not rows and not elsewhere and not vendor:
            return verdict
        routes = (path, *url_overrides(headers))
        for table in (rows, elsewhere):
            for routed in routes if table else ():
                off = off_flow(table, routed, self.decisions)
                if off is not None:
                    return off
        if vendor and (len(routes) > 1 or named):  # judged there as the request is
            there = self._at_vendor_api(method, host, path, named, routes)
            if there is not None:
                return there
        return verdict

    def _at_vendor_api(
        self, method: str, host: str, path: str, named: list[str], routes: tuple[str, ...]
    ) -> Verdict | None:
        """The refusal of a request whose headers name another path (``routes`` past the
        first) or another host (``named``) that :func:`~airlock.egress.flows.verdict_for`
        refuses at the vendor's own API host, ``host`` or one named: what no row names there
        while the start-up configuration is off, as the request's own path is refused;
        ``None`` when none is refused."""
        for vendor in sorted(DEFAULT_API_HOSTS.intersection((host, *named))):
            for routed in routes:
                if (vendor, routed) == (host, path):  # judged already
                    continue
                there = verdict_for(
                    method,
                    vendor,
                    routed,
                    self.decisions,
                    agent=self.agent,
                    api_hosts=self.api_hosts,
                )
                if not there.allowed:
                    return there
        return None

    def inspects(self, host: str) -> bool:
        """Whether requests to ``host`` are read (named with ``--inspect`` or in settings).

        ``host`` is in its canonical form, as the rules judged it (:attr:`RuleDecision.host
        <airlock.egress.rules.RuleDecision.host>`): ``localhost.`` and ``LOCALHOST`` are
        ``localhost``, so no other spelling of an inspected host escapes inspection.
        """
        return host in self.hosts

    async def intercept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        *,
        dial: Dial | None = None,
        activity: Callable[[], None] | None = None,
        established: bytes = b"",
    ) -> None:
        """Serve one client connection whose CONNECT to ``host:port`` was admitted.

        The connection stops reading before ``established`` (the CONNECT's ``200``) is
        written, so the client's first TLS bytes wait in the socket for the TLS layer instead
        of landing in the stream's plain-text buffer, where the handshake would never see them.

        Args:
            reader: The client connection, right after the CONNECT's head.
            writer: Its writer; TLS is started on it here.
            host: The CONNECT's host, as admitted by the host rules.
            port: Its port.
            dial: Opens TCP to the origin for this connection (the proxy's admitted address);
                the inspector's own dialler by default.
            activity: Called after each request (the proxy's idle watchdog).
            established: The CONNECT's answer, written here; empty when already written
                (then the client must not have sent anything yet).
        """
        cast(asyncio.Transport, writer.transport).pause_reading()
        if established:
            writer.write(established)
        try:
            await asyncio.wait_for(
                writer.start_tls(self.ca.tunnel_context(host)), HANDSHAKE_TIMEOUT
            )
        except OtherName as error:
            self._other_name(host, port, error)
            writer.close()
            return
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as error:
            self._client_refused(host, port, error)
            writer.close()
            return
        session = InspectedConnection(self, reader, writer, host, port, dial or self.dial, activity)
        try:
            await session.run()
        finally:
            await session.close()

    def _other_name(self, host: str, port: int, error: OtherName) -> None:
        """Record a tunnel whose client asked (SNI) for another name than its host, then
        ended its handshake (:class:`~airlock.egress.ca.OtherName`): the run's certificate
        is for ``host``, so a client that verifies refuses it. Its line in the report says
        so (:attr:`refused_by_client`), not that it pins certificates."""
        self.refused_by_client[host] = str(error)
        self._handshake_failed(
            host,
            port,
            f"the client ended the TLS handshake with {host}: {error} (requests inside go to "
            f"{host} alone)",
            f"client TLS handshake failed for {host}: {error} ({error.why})",
            server_name=error.asked,
        )

    def _client_refused(self, host: str, port: int, error: BaseException) -> None:
        why = str(error) or type(error).__name__
        self.refused_by_client[host] = why
        if refused_certificate(why):
            reason = (
                f"the client refused the run's certificate for {host} ({why}): it pins "
                f"certificates or does not read the CA bundle; leave {host} out of --inspect "
                "to tunnel it unread"
            )
        else:  # no certificate alert: it failed on its own (curl could not read its --cacert)
            reason = f"the client ended the TLS handshake with {host} ({why})"
        self._handshake_failed(host, port, reason, f"client TLS handshake failed for {host}: {why}")

    def _handshake_failed(
        self, host: str, port: int, reason: str, error: str, **fields: object
    ) -> None:
        """Record a tunnel to ``host`` whose client ended its TLS handshake. It carried no
        request, so it has no flow of its own: its record holds every field an inspected
        request's does, as :func:`record_of` fills them (``path`` empty, ``flow``
        ``unclassified``), so a reader of inspected records finds the same fields and
        values of the same kinds; ``type`` ``tunnel`` tells it apart."""
        self.record(
            record_of(
                time=self.wall(),
                type="tunnel",
                host=host,
                port=port,
                method="CONNECT",
                status=200,
                reason=reason,
                error=error,
                **fields,
            )
        )
