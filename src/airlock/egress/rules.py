"""Whether a connection to ``host:port`` may go out, and which rule said so.

The order is written here once: a deny rule beats everything; then the user's and the
settings' allow rules; then the destinations of the flows the policy engine has on; then
``--allow-all`` (audit only); else refused. Matching is the web-fetch guard's
(:func:`airlock.policy.rules.matches`, through :meth:`HostRule.covers`), and so is its reach:
a deny rule for an IPv4 address also covers the IPv6 addresses that carry it (IPv4-compatible,
NAT64 ``64:ff9b::/96``, 6to4, Teredo: :func:`airlock.policy.rules.carried_ipv4`), an allow
rule its own address only.
"""

from __future__ import annotations

from dataclasses import dataclass

from airlock.egress.config import ALLOW, DENY, EgressConfig, HostRule
from airlock.policy.endpoints import flow_hosts
from airlock.policy.hosts import MAX_NAME, AddressClass, HostError, parse_host
from airlock.policy.model import Context, Decisions
from airlock.policy.rules import carried_ipv4


@dataclass(frozen=True, slots=True)
class RuleDecision:
    """The answer for one destination."""

    host: str
    port: int
    decision: str
    """``allow`` or ``deny``."""
    reason: str
    """The deciding rule and its origin, in words."""
    rule: HostRule | None = None
    explicit: bool = False
    """Allowed by a rule that may let this host reach a private address
    (:attr:`HostRule.reaches_private`: ``--allow HOST``)."""

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW


class EgressRules:
    """The rules of one :class:`EgressConfig`, in the order they count."""

    def __init__(self, config: EgressConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, int], RuleDecision] = {}

    def check(self, host: str, port: int) -> RuleDecision:
        """Decide ``host:port`` (cached: the rules do not change during a run).

        The host is judged in its one canonical form (:func:`airlock.policy.hosts.parse_host`):
        ``0x7f.1`` is ``127.0.0.1`` and ``ＥＸＡＭＰＬＥ.com`` is ``example.com``, for the rules as
        for the connection.
        """
        if len(host) > MAX_NAME:  # no name is longer (nor an address): not looked at further
            reason = f"not a valid host: longer than {MAX_NAME} characters"
            return RuleDecision(shown_host(host), port, DENY, reason)
        key = (host, port)
        found = self._cache.get(key)
        if found is None:
            try:
                canonical = parse_host(host).text
            except HostError as error:
                return RuleDecision(host, port, DENY, f"not a valid host: {error}")
            found = self._decide(canonical, port)
            if len(self._cache) < 65536:
                self._cache[key] = found
        return found

    def denied(self, host: str, port: int) -> HostRule | None:
        """The deny rule that covers ``host:port`` (a canonical host: a name, or an address,
        with the IPv4 address an IPv6 one carries), or ``None``. Asked of the address a name
        resolved to as well: a deny of an address holds whatever name reaches it."""
        carried = carried_ipv4(host)
        for rule in self.config.deny:
            if rule.covers(host, port) or (carried is not None and rule.covers(carried, port)):
                return rule
        return None

    def _decide(self, host: str, port: int) -> RuleDecision:
        config = self.config
        denied = self.denied(host, port)
        if denied is not None:
            return RuleDecision(host, port, DENY, f"denied by {denied.describe()}", denied)
        for rule in config.allow:
            if rule.covers(host, port):
                reason = f"allowed by {rule.describe()}"
                return RuleDecision(host, port, ALLOW, reason, rule, explicit=rule.reaches_private)
        for rule in config.default_allow:
            if rule.covers(host, port):
                return RuleDecision(host, port, ALLOW, f"allowed by {rule.describe()}", rule)
        if config.allow_all:
            return RuleDecision(host, port, ALLOW, "allowed by --allow-all (audit only)")
        return RuleDecision(host, port, DENY, f"{NO_RULE} {host}:{port} (default: deny)")


def shown_host(host: str) -> str:
    """``host`` as messages, records and the report show it: whole when it is no longer than a
    name may be (253 characters), else its start and its length, marked so."""
    if len(host) <= MAX_NAME:
        return host
    return f"{host[:60]}…(cut: {len(host)} characters)"


NO_RULE = "no allow rule matches"
"""How the reason of a refusal by default begins (no rule named the host)."""


def how_to_allow(host: str, port: int) -> str:
    """What a user does to let ``host:port`` through, in words (an IPv6 address in brackets)."""
    if ":" in host:
        host = f"[{host}]"
    return (
        f"to allow it, run again with --allow {host} (or --allow {host}:{port}), or add "
        f'"{host}" to sandbox.network.allowedDomains in .claude/settings.json'
    )


def how_to_undeny(rule: HostRule) -> str:
    """What a user does about a refusal by the deny rule ``rule``: no allow rule helps."""
    return f"a deny rule beats every allow rule: to let it through, take {rule.describe()} away"


def private_refusal(host: str, address: str, address_class: str) -> tuple[str, str]:
    """Why ``host`` is refused on its non-public ``address`` (of ``address_class``, an
    :class:`~airlock.policy.hosts.AddressClass` value), and what a user does about it: the
    reason and the hint of a ``403``."""
    via = f"is {address}" if host == address else f"resolves to {address}"
    if address_class == AddressClass.THIS_HOST:
        what = "one of this machine's own addresses"
    else:
        what = f"{'an' if address_class[0] in 'aeiou' else 'a'} {address_class} address"
    reason = f"{host} {via}, {what}"
    if address_class == AddressClass.METADATA:
        return reason, "a cloud metadata address is never reached, whatever the rules"
    shown = f"[{host}]" if ":" in host else host
    return reason, (
        f"to reach it, run again with --allow {shown}: only a rule given on the command line "
        "reaches such an address (a rule in a settings file never does)"
    )


def default_rules(context: Context, decisions: Decisions) -> tuple[HostRule, ...]:
    """Allow rules for the hosts of every flow the policy engine has on.

    The hosts come from the engine (:func:`airlock.policy.endpoints.flow_hosts`); nothing is
    re-derived here.
    """
    return tuple(
        HostRule.parse(host, f"policy: flow {flow} is on")
        for flow, host in flow_hosts(context, decisions)
    )
