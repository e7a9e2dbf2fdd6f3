"""What a run sent out, per host: kept while the proxy runs, returned when it closes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from airlock._sizes import human_size
from airlock._visible import visible
from airlock.egress.rules import MANAGED_ONLY, NO_RULE, bracketed, private_class
from airlock.policy.hosts import AddressClass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from airlock.egress.flows import FlowSummary


OTHER_HOSTS = "(other hosts)"
"""The one entry the hosts past ``MAX_HOSTS`` are counted under."""
NO_HOST = "(no host)"
"""The entry of the requests refused before a host was read (malformed, too slow)."""
MAX_HOSTS = 1000
"""Distinct hosts counted apart in a run (each refused name is one: a flood of names must
not grow the proxy's memory and the run's record without end)."""
MAX_REASONS = 20
"""Distinct refusal reasons (and errors) counted apart per host; the rest under
``OTHER_REASONS``."""
OTHER_REASONS = "(other reasons)"
MAX_REASON = 300
"""A reason longer than this is counted by its start (and marked so)."""
MAX_SUGGESTED = 10
"""Hosts refused for want of a rule that the report's note names at most."""
SENT = "sent"
REPLACED = "replaced"
REFUSED = "refused"
NOT_SENT = "not sent"
SECRETS_OUTCOMES = (SENT, REPLACED, REFUSED, NOT_SENT)
"""What became of the secrets found in uploads (:meth:`HostStats.found`), in the report's order."""
_OUTCOME_WORDS = {
    SENT: "sent, --secrets report",
    REPLACED: "replaced before they left, --secrets redact",
    REFUSED: "refused: their requests did not leave",
    NOT_SENT: "not sent: the exchange failed before the request left",
}


class Uninspected(NamedTuple):
    """A host connections reached without inspection, though the agent's table names flows
    there (:meth:`~airlock.egress.inspect.Inspector.uninspected`)."""

    host: str
    connections: int
    flows: tuple[str, ...]
    """The flows the agent's table names at the host: what its connections may have carried."""

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "connections": self.connections, "flows": list(self.flows)}

    def line(self) -> str:
        one = self.connections == 1
        return (
            f"  ! {self.host}: {self.connections} connection{'' if one else 's'} not "
            f"inspected, so not counted above (the agent sends {', '.join(self.flows)} "
            f"there): --inspect {self.host} counts {'it' if one else 'them'}"
        )


@dataclass(slots=True)
class HostStats:
    """Counters for one destination host (mutable: the proxy updates them as traffic flows)."""

    connections: int = 0
    """Connections opened to the host (tunnels, and connections carrying plain requests)."""
    requests: int = 0
    """Requests that went out (:func:`went_out`): the host's request records allowed, but
    those that failed before any of them left (counted in :attr:`errors`); the refused are
    counted in :attr:`refused`, tunnels in :attr:`connections`."""
    bytes_out: int = 0
    bytes_in: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Refusals (the records whose decision is ``deny``), by reason (:meth:`refuse`)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Allowed connections and requests that failed (the records allowed with an error: a
    destination that could not be reached, a connection cut), by error (:meth:`fail`)."""
    hints: dict[str, str] = field(default_factory=dict)
    """What lets a refused request through, by the refusal's reason as :attr:`refused` counts
    it (the first hint given for it): the way forward the ``403`` told the client, which the
    report tells the user too (:meth:`hint`)."""
    secrets: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Secrets found in inspected uploads, by what became of them and their kind (never a
    value): ``(outcome, kind)`` (:meth:`found`)."""

    def refuse(self, reason: str) -> None:
        """Count one refusal for ``reason`` (see :func:`count_reason`)."""
        count_reason(self.refused, reason)

    def hint(self, reason: str, hint: str) -> None:
        """Keep ``hint``, what lets a request refused for ``reason`` through, for the report:
        the first for a reason; none past ``MAX_REASONS`` (as :func:`count_reason` counts)."""
        if not hint:
            return
        reason = counted_as(reason)
        if reason not in self.hints and len(self.hints) < MAX_REASONS:
            self.hints[reason] = hint

    def found(self, record: dict[str, Any], mode: str) -> None:
        """Count the secrets an inspected request's ``record`` found (its ``secrets``: kinds
        and counts), by what became of them under ``--secrets`` ``mode``: ``refused`` (the
        request was refused, whatever refused it: they did not leave), ``not sent`` (allowed,
        but nothing left: the origin could not be reached), ``replaced`` (``redact``: an
        allowed request left with each replaced), else ``sent``. The kinds are the redaction
        engine's, a fixed few: the counts stay small."""
        found = record.get("secrets")
        if not found:
            return
        if record.get("decision") == "deny":
            outcome = REFUSED
        elif not record.get("bytes_out"):
            outcome = NOT_SENT
        elif mode == "redact":
            outcome = REPLACED
        else:
            outcome = SENT
        for kind, count in found.items():
            self.secrets[(outcome, str(kind))] += int(count)

    def fail(self, error: str) -> None:
        """Count one error (see :func:`count_reason`)."""
        count_reason(self.errors, error)


def failed_before_it_left(record: Mapping[str, object]) -> bool:
    """Whether a request's ``record`` is one allowed that failed before any of it left (an
    ``error``, no ``bytes_out``: the origin could not be reached, its certificate did not
    verify): counted as failed, not sent."""
    return (
        record.get("decision") == "allow"
        and bool(record.get("error"))
        and not record.get("bytes_out")
    )


def went_out(record: Mapping[str, object]) -> bool:
    """Whether a request's ``record`` counts among its host's requests: allowed, and not
    failed before any of it left (:func:`failed_before_it_left`), as the flows count it sent."""
    return record.get("decision") == "allow" and not failed_before_it_left(record)


def counted_as(reason: str) -> str:
    """``reason`` as the report counts it: its first ``MAX_REASON`` characters."""
    return reason[:MAX_REASON] + "…" if len(reason) > MAX_REASON else reason


def count_reason(counts: Counter[str], reason: str) -> None:
    """Count one for ``reason`` (:func:`counted_as`), and once ``MAX_REASONS`` are counted,
    a new one under ``OTHER_REASONS``."""
    reason = counted_as(reason)
    if reason not in counts and len(counts) >= MAX_REASONS:
        reason = OTHER_REASONS
    counts[reason] += 1


@dataclass(frozen=True, slots=True)
class HostReport:
    """One host's line of the end-of-run report."""

    host: str
    connections: int
    requests: int
    bytes_out: int
    bytes_in: int
    refused: tuple[tuple[str, int], ...]
    """``(reason, count)``, most frequent first."""
    errors: tuple[tuple[str, int], ...] = ()
    """``(error, count)``, most frequent first."""
    hints: tuple[tuple[str, str], ...] = ()
    """``(reason, hint)``: what lets the requests refused for a reason through."""
    secrets: tuple[tuple[str, str, int], ...] = ()
    """``(outcome, kind, count)``: the secrets found in uploads to the host
    (:meth:`HostStats.found`), most frequent first."""

    def to_json(self) -> dict[str, Any]:
        hints = dict(self.hints)
        refused = refusal_counts(self.refused)
        for entry in refused:
            if entry["reason"] in hints:
                entry["hint"] = hints[entry["reason"]]
        return {
            "host": self.host,
            "connections": self.connections,
            "requests": self.requests,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "refused": refused,
            "errors": refusal_counts(self.errors),
        }

    def refusal_hint(self, reason: str) -> str:
        """What lets the requests refused for ``reason`` through, when the report says it by
        this refusal: not for want of a rule (the report's note names those hosts together,
        :meth:`ProxyReport.notes`); ``""``."""
        if reason.startswith((NO_RULE, MANAGED_ONLY)):
            return ""
        return dict(self.hints).get(reason, "")


@dataclass(frozen=True, slots=True)
class ProxyReport:
    """What :meth:`RunningProxy.close` returns: the run's traffic, and how its log ended."""

    run_id: str
    hosts: tuple[HostReport, ...]
    final_hash: str | None
    """The audit log's last hash (also kept in the heads file); ``None`` without a log."""
    audit_log: Path | None
    upload_budget_exhausted: bool = False
    error: str | None = None
    """Why the proxy stopped traffic (the audit log could not be written, or the run's records
    reached their cap), if it did."""
    flows: tuple[FlowSummary, ...] = ()
    """Inspected requests by data flow, next to what the policy engine predicted."""
    refused_by_client: tuple[tuple[str, str], ...] = ()
    """Inspected hosts whose clients ended the TLS handshake, with the error: a refusal of
    the run's certificate (pinning, told by its alert), or a failure of their own."""
    connections_refused: tuple[tuple[str, int], ...] = ()
    """Connections answered ``503`` before any request was read, ``(reason, count)``: past
    ``--max-connections``, or once traffic stopped (counted, not logged one by one)."""
    unchecked: tuple[tuple[str, int], ...] = ()
    """Inspected bodies sent on (``--secrets report``) that could not be read decoded to their
    end for secrets, ``(why, count)``: the records' ``unchecked``."""
    uninspected: tuple[Uninspected, ...] = ()
    """With inspection on, the hosts the agent's table names flows at that connections
    reached without it: their traffic is in no flow's count."""

    @property
    def refused(self) -> int:
        """The connections and requests refused: the log's records whose decision is deny."""
        return sum(count for host in self.hosts for _, count in host.refused)

    @property
    def errors(self) -> int:
        """The allowed connections and requests that failed: the log's allowed records with
        an error."""
        return sum(count for host in self.hosts for _, count in host.errors)

    @property
    def secrets(self) -> dict[str, dict[str, int]]:
        """The secrets found in uploads, the run's: by what became of them (``sent``,
        ``replaced``, ``refused``, ``not sent``), the counts of each kind, most first."""
        totals: dict[str, Counter[str]] = {}
        for host in self.hosts:
            for outcome, kind, count in host.secrets:
                totals.setdefault(outcome, Counter())[kind] += count
        return {
            outcome: dict(totals[outcome].most_common())
            for outcome in SECRETS_OUTCOMES
            if outcome in totals
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "hosts": [host.to_json() for host in self.hosts],
            "refused": self.refused,
            "errors": self.errors,
            "final_hash": self.final_hash,
            "audit_log": None if self.audit_log is None else str(self.audit_log),
            "upload_budget_exhausted": self.upload_budget_exhausted,
            "connections_refused": refusal_counts(self.connections_refused),
            "unchecked": refusal_counts(self.unchecked),
            "secrets": self.secrets,
            "error": self.error,
            "flows": [flow.to_json() for flow in self.flows],
            "refused_by_client": [
                {"host": host, "error": error} for host, error in self.refused_by_client
            ],
            "uninspected": [host.to_json() for host in self.uninspected],
        }

    def lines(self) -> list[str]:
        """The report in words, a line each, for stderr; what came from the run (hosts,
        reasons) with its control characters shown as escapes."""
        if not self.hosts:
            out = ["airlock: nothing left the machine"]
        else:
            out = ["airlock: what left the machine (per host: connections, requests, out, in):"]
        for host in self.hosts:
            out.append(
                f"  {host.host}: {host.connections} conn, {host.requests} req, "
                f"{human_size(host.bytes_out)} out, {human_size(host.bytes_in)} in"
            )
            for reason, count in host.refused:
                out.append(f"    refused {count}×: {reason}")
                hint = host.refusal_hint(reason)
                if hint:
                    out.append(f"      {hint}")
            out.extend(f"    failed {count}×: {error}" for error, count in host.errors)
        out.extend(self.flow_lines())
        out.extend(f"  {note}" for note in self.notes())
        if self.error:
            out.append(f"  traffic was stopped: {self.error}")
        if self.audit_log is not None:
            out.append(f"  audit log {self.audit_log}, {self.final_words()}")
        return [visible(line) for line in out]

    def final_words(self) -> str:
        """The run's final hash in words, or why there is none (the log failed)."""
        if self.final_hash:
            return f"final hash {self.final_hash}"
        return "no final hash (the log failed: the run's last records are not in it)"

    def notes(self) -> list[str]:
        """What the run's limits did, a sentence each (the upload budget, refused connections,
        bodies not read to their end for secrets), what lets out the hosts refused for want of
        a rule, and the secrets found in uploads."""
        out = []
        if self.upload_budget_exhausted:
            out.append(
                "the upload budget ran out: transfers under way were cut there, later "
                "connections refused"
            )
        if any(host.host == OTHER_HOSTS for host in self.hosts):
            out.append(f"hosts past the first {MAX_HOSTS} are counted together as {OTHER_HOSTS}")
        out.extend(
            f"{count} connection{'s' if count > 1 else ''} refused (503) before any request "
            f"was read: {reason}"
            for reason, count in self.connections_refused
        )
        out.extend(
            f"{count} request bod{'ies' if count > 1 else 'y'} sent on without being read "
            f"decoded to the end for secrets (unchecked in the audit log): {why}"
            for why, count in self.unchecked
        )
        out.extend(self._how_to_allow())
        out.extend(self.secrets_lines())
        return out

    def secrets_lines(self) -> list[str]:
        """The secrets found in uploads (inspected requests' bodies, headers and targets), a
        sentence for each thing that became of them: their kinds and counts, never a value
        (the audit log's records say which requests held them)."""
        return [
            f"secrets found in uploads ({_OUTCOME_WORDS[outcome]}): "
            + ", ".join(f"{kind} ×{count}" for kind, count in kinds.items())
            for outcome, kinds in self.secrets.items()
        ]

    def _how_to_allow(self) -> list[str]:
        """What lets out the hosts refused for want of a rule (a command that failed may have
        needed them), and only what can: ``--allow`` for an address that is not public (a
        settings rule never reaches one), nothing for a cloud metadata address, and under
        ``allowManagedDomainsOnly`` only the managed settings."""
        out = []
        unnamed = [
            host
            for host in self._refused_by(NO_RULE)
            if private_class(host) != AddressClass.METADATA
        ]
        past = self._refused_past_first_hosts(NO_RULE)
        if unnamed:
            public = [host for host in unnamed if private_class(host) is None]
            private = [host for host in unnamed if private_class(host) is not None]
            if not private:
                settings = ", or name them in sandbox.network.allowedDomains"
            elif not public:
                settings = (
                    " (a rule in a settings file never reaches an address that is not public)"
                )
            else:
                settings = (
                    f", or name {_listed(public)} in sandbox.network.allowedDomains (a rule in "
                    f"a settings file never reaches {_listed(private)}: not public)"
                )
            allow = _listed(unnamed, "--allow ")
            out.append(
                "refused as no rule names them; if the command needed them, run again with "
                f"{allow}{settings}" + (f"; {_past_first_hosts(past, 'more ')}" if past else "")
            )
        elif past:
            out.append(f"refused as no rule names them: {_past_first_hosts(past)}")
        locked = self._refused_by(MANAGED_ONLY)
        public = [host for host in locked if private_class(host) is None]
        private = [host for host in locked if private_class(host) is not None]
        if public:
            out.append(
                "refused as only the managed settings allow hosts here "
                f"(allowManagedDomainsOnly): {_listed(public)}; neither --allow nor another "
                "settings file can, their administrator can add them to "
                "sandbox.network.allowedDomains there"
            )
        if private:  # only --allow reaches one, and it is refused under the lock
            out.append(
                "refused as no rule names them, and out of reach in this run (not public: only "
                "--allow reaches such an address, refused under allowManagedDomainsOnly): "
                f"{_listed(private)}"
            )
        past = self._refused_past_first_hosts(MANAGED_ONLY)
        if past:
            out.append(
                "refused as only the managed settings allow hosts here "
                f"(allowManagedDomainsOnly): {_past_first_hosts(past, 'more ' if locked else '')}"
            )
        return out

    def _refused_by(self, start: str) -> list[str]:
        """The hosts with a refusal whose reason begins with ``start``: names only, not the
        entries that count many hosts or none (``OTHER_HOSTS``, ``NO_HOST``: no ``--allow``
        takes them, and their parentheses would break a pasted command line)."""
        return [
            host.host
            for host in self.hosts
            if host.host not in (OTHER_HOSTS, NO_HOST)
            and any(reason.startswith(start) for reason, _ in host.refused)
        ]

    def _refused_past_first_hosts(self, start: str) -> int:
        """The refusals of the hosts past the first ``MAX_HOSTS`` (counted together, their
        names not kept) when one of them has a reason that begins with ``start``; else 0."""
        for host in self.hosts:
            if host.host == OTHER_HOSTS and any(
                reason.startswith(start) for reason, _ in host.refused
            ):
                return sum(count for _, count in host.refused)
        return 0

    def flow_lines(self) -> list[str]:
        """Inspected requests by flow, a line each, flagging what the engine did not predict."""
        out = []
        for flow in self.flows:
            if not (flow.allowed or flow.refused or flow.failed or flow.difference):
                continue
            mark = "  !" if flow.difference else "   "
            predicted = flow.predicted or "not a flow of the engine"
            failed = f"{flow.failed} failed, " if flow.failed else ""
            out.append(
                f"{mark} {flow.flow}: {flow.allowed} sent, {flow.refused} refused, {failed}"
                f"{human_size(flow.bytes_out)} out ({predicted})"
            )
            if flow.difference:
                out.append(f"      differs: {flow.difference}")
        out.extend(_client_refusal(host, error) for host, error in self.refused_by_client)
        out.extend(host.line() for host in self.uninspected)
        if not out:  # nothing inspected went or was refused: no heading over nothing
            return []
        return [
            "airlock: inspected requests by data flow (sent, refused; the engine predicted):",
            *out,
        ]


def refusal_counts(counts: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    """``(reason, count)`` pairs as the JSON report and the run record write them."""
    return [{"reason": reason, "count": count} for reason, count in counts]


def host_reports(hosts: dict[str, HostStats]) -> tuple[HostReport, ...]:
    """The per-host lines, busiest host first."""
    ordered = sorted(
        hosts.items(), key=lambda item: (-item[1].bytes_out - item[1].bytes_in, item[0])
    )
    return tuple(
        HostReport(
            host,
            stats.connections,
            stats.requests,
            stats.bytes_out,
            stats.bytes_in,
            tuple(stats.refused.most_common()),
            tuple(stats.errors.most_common()),
            tuple(stats.hints.items()),
            tuple((outcome, kind, n) for (outcome, kind), n in stats.secrets.most_common()),
        )
        for host, stats in ordered
    )


def _past_first_hosts(times: int, more: str = "") -> str:
    """The hosts past the first ``MAX_HOSTS``, refused ``times`` (``more`` times, after hosts
    named), in words: they are not named, the audit log names them."""
    return (
        f"hosts past the first {MAX_HOSTS} were refused {times} {more}"
        f"time{'s' if times > 1 else ''} (counted together as {OTHER_HOSTS}; the audit log "
        "names each)"
    )


def _listed(hosts: list[str], before: str = "") -> str:
    """The first ``MAX_SUGGESTED`` of ``hosts`` as ``--allow`` takes them (an IPv6 address in
    brackets), each after ``before``, and how many more."""
    shown = " ".join(f"{before}{bracketed(host)}" for host in hosts[:MAX_SUGGESTED])
    more = len(hosts) - MAX_SUGGESTED
    return f"{shown} (and {more} more)" if more > 0 else shown


CERTIFICATE_ALERTS = ("alert unknown ca", "alert bad certificate", "alert certificate unknown")
"""The TLS alerts (as OpenSSL words them) of a client that refused the run's certificate: it
does not trust the CA (it pins, or reads its own roots). A client that ends the handshake
without one (curl exit 77: it could not read its own ``--cacert``; a connection reset) failed
on its own, and is not said to refuse the certificate."""


def refused_certificate(error: str) -> bool:
    """Whether a client's TLS ``error`` is one of :data:`CERTIFICATE_ALERTS`: it refused the
    run's certificate."""
    return any(alert in error.lower() for alert in CERTIFICATE_ALERTS)


def _client_refusal(host: str, error: str) -> str:
    """The report's line for an inspected host whose client ended the TLS handshake: the way
    forward when it refused the run's certificate, the error as it was otherwise."""
    if refused_certificate(error):
        return (
            f"  ! {host}: the client refused the run's certificate (pinning?): {error}; leave "
            f"{host} out of --inspect (its TLS then goes through as a tunnel)"
        )
    return f"  ! {host}: the client ended the handshake ({error})"
