"""Whether a connection to ``host:port`` may go out, and which rule said so.

The order is written here once: a deny rule beats everything; then an ask rule
(``WebFetch(domain:…)`` in ``permissions.ask``: the web-fetch guard's order is deny, ask,
allow), which the proxy cannot put to anyone, so it refuses unless the user's own command line
lets the host through (``--allow`` covering it, or ``--allow-all``); then the user's and the
settings' allow rules; then the destinations of the flows the policy engine has on; then
``--allow-all`` (audit only); else refused. Matching is the web-fetch guard's
(:func:`airlock.policy.rules.matches`, through :meth:`HostRule.covers`), and so is its reach:
a deny or ask rule for an IPv4 address also covers the IPv6 addresses that carry it
(IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4, Teredo:
:func:`airlock.policy.rules.carried_ipv4`), an allow rule its own address only.

Each refusal comes with what lets the host through (:attr:`RuleDecision.hint`), and only what
can: a settings rule never reaches a loopback or private address, and under the managed
settings' ``allowManagedDomainsOnly`` only those settings allow anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any

from airlock._words import with_article
from airlock.egress.config import ALLOW, ALLOW_OPTION, DENY, EgressConfig, HostRule
from airlock.policy.decide import decide
from airlock.policy.endpoints import flow_hosts
from airlock.policy.hosts import MAX_NAME, AddressClass, HostError, classify, parse_host
from airlock.policy.hosts import bracketed as bracketed  # named here too, as ever; they live
from airlock.policy.hosts import host_port as host_port  # in policy.hosts for config.py's sake
from airlock.policy.model import Context, Decisions, Origin, Setting, Source, Var
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
    hint: str = ""
    """A refusal's: what lets the host through, in words (``""``: nothing to say)."""

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW


class EgressRules:
    """The rules of one :class:`EgressConfig`, in the order they count."""

    def __init__(self, config: EgressConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, int], RuleDecision] = {}
        self._denied_cache: dict[tuple[str, int], HostRule | None] = {}
        self._deny = RuleIndex(config.deny)
        self._ask = RuleIndex(config.ask)
        self._allow = RuleIndex(config.allow)
        self._default_allow = RuleIndex(config.default_allow)
        self._allow_option = RuleIndex(rule for rule in config.allow if rule.origin == ALLOW_OPTION)
        self._allow_named = RuleIndex(rule for rule in config.allow if rule.reaches_private)

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
        resolved to as well: a deny of an address holds whatever name reaches it. Cached, as
        :meth:`check` is: the proxy asks it of every connection's address."""
        key = (host, port)
        if key in self._denied_cache:
            return self._denied_cache[key]
        found = self._deny.covering(host, port, carried_ipv4(host))
        if len(self._denied_cache) < 65536:
            self._denied_cache[key] = found
        return found

    def _decide(self, host: str, port: int) -> RuleDecision:
        config = self.config
        denied = self.denied(host, port)
        if denied is not None:
            reason = f"denied by {denied.describe()}"
            return RuleDecision(host, port, DENY, reason, denied, hint=how_to_undeny(denied))
        asked = self._ask.covering(host, port, carried_ipv4(host))
        if asked is not None and not self._on_command_line(host, port):
            reason = f"{ASKED} {asked.describe()}, and the proxy cannot ask"
            hint = how_to_pass_ask(host, port, config.managed_lock)
            return RuleDecision(host, port, DENY, reason, asked, hint=hint)
        rule = self._allow.covering(host, port)
        if rule is not None:
            if not rule.reaches_private:  # a wildcard first: an --allow naming the host may follow
                rule = self._allow_named.covering(host, port) or rule
            reason = f"allowed by {rule.describe()}"
            return RuleDecision(host, port, ALLOW, reason, rule, explicit=rule.reaches_private)
        rule = self._default_allow.covering(host, port)
        if rule is not None:
            return RuleDecision(host, port, ALLOW, f"allowed by {rule.describe()}", rule)
        if config.allow_all:
            return RuleDecision(host, port, ALLOW, "allowed by --allow-all (audit only)")
        shown = host_port(host, port)
        if config.managed_lock is not None:
            reason = f"{MANAGED_ONLY} {shown} (allowManagedDomainsOnly in {config.managed_lock})"
        else:
            reason = f"{NO_RULE} {shown} (default: deny)"
        hint = how_to_allow(host, port, config.managed_lock)
        return RuleDecision(host, port, DENY, reason, hint=hint)

    def _on_command_line(self, host: str, port: int) -> bool:
        """Whether the user's own command line lets ``host:port`` through: ``--allow-all``,
        or an ``--allow`` covering it (what passes an ask rule, which the proxy cannot put to
        anyone: the user said so for this run)."""
        return self.config.allow_all or self._allow_option.covering(host, port) is not None


class RuleIndex:
    """One list of rules (the deny, the ask or the allow rules), looked up without reading
    every rule: settings may hold a hundred thousand, and the proxy asks at every connection,
    on its one event loop.

    The answer is the linear scan's, the first rule of the list that covers ``host:port``
    (:meth:`HostRule.covers`); only the way to it differs. A rule naming one host is found by
    that host; ``*.example.com`` by the parent domains of the host (``a.b.example.com`` asks
    for ``b.example.com``, ``example.com``, ``com``: what ``host.endswith(".example.com")``
    compares); each on any port, or on the port asked. The rest (every host,
    ``cdn*.example.com``, ``example.*``: a ``*`` inside a label) are read in order, up to the
    place of the first rule found so far. Places are kept, not pairs: a container made per
    rule costs the garbage collector a pass over them all, again and again, while it grows.
    """

    __slots__ = ("_exact", "_parents", "_rules", "_scanned")

    def __init__(self, rules: Iterable[HostRule]) -> None:
        self._rules = list(rules)
        self._exact = _ByName()
        self._parents = _ByName()
        self._scanned: list[int] = []
        for place, rule in enumerate(self._rules):
            pattern = rule.pattern
            if pattern.any_host or pattern.wildcard:
                self._scanned.append(place)
            elif pattern.subdomains_only:  # text is ".example.com"
                self._parents.add(pattern.text[1:], rule.port, place)
            else:
                self._exact.add(pattern.text, rule.port, place)

    def covering(self, host: str, port: int, carried: str | None = None) -> HostRule | None:
        """The first rule that covers ``host:port`` (normalised), or ``carried:port`` when
        given (the IPv4 address ``host`` carries, for deny and ask rules:
        :func:`~airlock.policy.rules.carried_ipv4`); ``None``."""
        place = self._first(host, port)
        if carried is not None:
            place = min(place, self._first(carried, port))
        return self._rules[place] if place < len(self._rules) else None

    def _first(self, host: str, port: int) -> int:
        """The place of the first rule that covers ``host:port``; past the end when none."""
        best = self._exact.first(host, port, len(self._rules))
        if self._parents:
            dot = host.find(".")
            while dot >= 0:
                best = self._parents.first(host[dot + 1 :], port, best)
                dot = host.find(".", dot + 1)
        for place in self._scanned:
            if place >= best:
                break
            if self._rules[place].covers(host, port):
                return place
        return best


class _ByName:
    """The places of rules by the name they hold (a host, or the parent domain of
    ``*.example.com``), on any port or on one: the first place for each."""

    __slots__ = ("_any_port", "_on_port")

    def __init__(self) -> None:
        self._any_port: dict[str, int] = {}
        self._on_port: dict[tuple[str, int], int] = {}

    def __bool__(self) -> bool:
        return bool(self._any_port or self._on_port)

    def add(self, name: str, port: int | None, place: int) -> None:
        if port is None:
            self._any_port.setdefault(name, place)
        else:
            self._on_port.setdefault((name, port), place)

    def first(self, name: str, port: int, best: int) -> int:
        """``best``, or the place of a rule for ``name`` on any port or on ``port`` when it
        comes earlier."""
        best = min(best, self._any_port.get(name, best))
        if self._on_port:
            best = min(best, self._on_port.get((name, port), best))
        return best


def shown_host(host: str) -> str:
    """``host`` as messages, records and the report show it: whole when it is no longer than a
    name may be (253 characters), else its start and its length, marked so."""
    if len(host) <= MAX_NAME:
        return host
    return f"{host[:60]}…(cut: {len(host)} characters)"


NO_RULE = "no allow rule matches"
"""How the reason of a refusal by default begins (no rule named the host)."""
MANAGED_ONLY = "no managed allow rule matches"
"""How it begins under the managed settings' ``allowManagedDomainsOnly`` (only they allow)."""
ASKED = "an ask rule covers it:"
"""How the reason of a refusal by an ask rule (``permissions.ask``) begins."""


def private_class(host: str) -> str | None:
    """The :class:`~airlock.policy.hosts.AddressClass` of ``host`` when it is known not public
    without a lookup: an address that is not public (in any spelling, or carried in IPv6), or
    ``localhost`` and its subdomains (loopback by definition, RFC 6761); ``None`` otherwise (a
    name may resolve anywhere: the address check says so then)."""
    if host == "localhost" or host.endswith(".localhost"):
        return AddressClass.LOOPBACK
    try:
        address = parse_host(host).address
    except HostError:
        return None
    return None if address is None else classify(address)


def how_to_allow(host: str, port: int, managed_lock: str | None = None) -> str:
    """What a user does to let ``host:port`` through, no rule having named it, in words (an
    IPv6 address in brackets), and only what can work: under ``managed_lock`` (the managed
    settings that set ``allowManagedDomainsOnly``) nothing but those settings; for an address
    that is not public, ``--allow`` alone (a settings rule never reaches one), and for a cloud
    metadata address nothing."""
    shown = bracketed(host)
    kind = private_class(host)
    if kind == AddressClass.METADATA:
        return "a cloud metadata address is never reached, whatever the rules"
    if managed_lock is not None and kind is not None:
        return (
            f"it cannot be reached in this run: only a rule given on the command line reaches "
            f"{with_article(kind)} address, and --allow is refused here (allowManagedDomainsOnly in "
            f"{managed_lock})"
        )
    if managed_lock is not None:
        return (
            f"only the managed settings allow hosts here (allowManagedDomainsOnly in "
            f"{managed_lock}): no other settings file nor --allow can; their administrator "
            f"can add {shown} to sandbox.network.allowedDomains there"
        )
    if kind is not None:
        return (
            f"to allow it, run again with --allow {shown}:{port} (or --allow {shown}): only a "
            f"rule given on the command line reaches {with_article(kind)} address (a rule in a settings "
            "file never does)"
        )
    return (
        f"to allow it, run again with --allow {shown} (or --allow {shown}:{port}), or add "
        f'"{shown}" to sandbox.network.allowedDomains in .claude/settings.json'
    )


def how_to_pass_ask(host: str, port: int, managed_lock: str | None = None) -> str:
    """What a user does about a refusal by an ask rule, which the proxy cannot put to anyone."""
    if managed_lock is not None:  # --allow is refused then
        return (
            "to let it through, take that ask rule away (--allow is refused here: "
            f"allowManagedDomainsOnly in {managed_lock})"
        )
    return (
        f"to let it through for this run, run again with --allow {bracketed(host)} (or "
        f"--allow {host_port(host, port)}); or take that ask rule away"
    )


def how_to_undeny(rule: HostRule) -> str:
    """What a user does about a refusal by the deny rule ``rule``: no allow rule helps."""
    return f"a deny rule beats every allow rule: to let it through, take {rule.describe()} away"


def private_refusal(
    host: str, address: str, address_class: str, managed_lock: str | None = None
) -> tuple[str, str]:
    """Why ``host`` is refused on its non-public ``address`` (of ``address_class``, an
    :class:`~airlock.policy.hosts.AddressClass` value), and what a user does about it: the
    reason and the hint of a ``403`` (under ``managed_lock``, where ``--allow`` is refused,
    that nothing can in this run)."""
    if address_class == AddressClass.THIS_HOST:
        what = "one of this machine's own addresses"
    else:
        what = f"{with_article(address_class)} address"
    # an address given as such is not said twice ("127.0.0.2 is 127.0.0.2, a loopback …")
    reason = f"{host} is {what}" if host == address else f"{host} resolves to {address}, {what}"
    if address_class == AddressClass.METADATA:
        return reason, "a cloud metadata address is never reached, whatever the rules"
    if managed_lock is not None:
        return reason, (
            "only a rule given on the command line reaches such an address (a rule in a "
            f"settings file never does), and --allow is refused here (allowManagedDomainsOnly "
            f"in {managed_lock}): it cannot be reached in this run"
        )
    return reason, (
        f"to reach it, run again with --allow {bracketed(host)}: only a rule given on the "
        "command line reaches such an address (a rule in a settings file never does)"
    )


PRIVATE_NAMES = (
    (
        "internal",
        "ICANN's top-level domain for private networks, .internal (AWS and GCP name their "
        "machines and services there)",
    ),
    ("local", "the local link's domain, .local, answered by multicast DNS (RFC 6762)"),
    ("home.arpa", "a home network's domain, .home.arpa (RFC 8375)"),
)
"""Domains whose names only a private network answers, and what each is, in words: a name
under one leads to a private address wherever it resolves (:func:`private_name`)."""


def private_name(host: str) -> str | None:
    """What ``host`` (canonical) is, in words, when it is a name under a domain that only a
    private network answers (:data:`PRIVATE_NAMES`); ``None`` otherwise. Through an upstream
    proxy, which resolves names itself, the address check cannot see where such a name
    leads: it is refused as a private address is, unless ``--allow`` names it."""
    for domain, what in PRIVATE_NAMES:
        if host == domain or host.endswith("." + domain):
            return what
    return None


def private_name_refusal(host: str, what: str, managed_lock: str | None = None) -> tuple[str, str]:
    """Why ``host``, a name under a domain only a private network answers (``what``:
    :func:`private_name`), is refused through the upstream proxy, and what a user does about
    it: the reason and the hint of a ``403``."""
    reason = (
        f"{host} is a name under {what}: it leads to a private address, and the upstream "
        "proxy, which resolves it, would reach it"
    )
    if managed_lock is not None:
        return reason, (
            "only a rule given on the command line reaches a private network's name, and "
            f"--allow is refused here (allowManagedDomainsOnly in {managed_lock}): it cannot "
            "be reached in this run"
        )
    return reason, (
        f"to reach it, run again with --allow {host}: only a rule given on the command line "
        "reaches a private network's name (a rule in a settings file never does)"
    )


def default_rules(
    context: Context, decisions: Decisions, managed_only: bool = False
) -> tuple[HostRule, ...]:
    """Allow rules for the hosts of every flow the policy engine has on.

    The hosts come from the engine (:func:`airlock.policy.endpoints.flow_hosts`); nothing is
    re-derived here. With ``managed_only`` (the managed settings'
    ``allowManagedDomainsOnly``), only those that the engine also finds with the managed
    settings and the environment alone (:func:`flow_hosts_set_aside`).
    """
    found = flow_hosts(context, decisions)
    if managed_only:
        theirs = _hosts_kept(context, _trusted)
        found = tuple((flow, host) for flow, host in found if host in theirs)
    return tuple(  # an IPv6 address (ANTHROPIC_BASE_URL=https://[::1]:8443) as a rule writes it
        HostRule.parse(f"[{host}]" if ":" in host else host, f"policy: flow {flow} is on")
        for flow, host in found
    )


TRUSTED_SOURCES = frozenset({Source.MANAGED, Source.ENVIRONMENT, Source.STATE, Source.DEFAULT})
"""Where a value may come from to name a flow's host under the managed settings'
``allowManagedDomainsOnly``: the managed settings, airlock's own environment (``--env``'s
values included: ``airlock run`` gives the engine the variables the command gets), airlock's
remembered answers and the built-in defaults. A value of any other settings file (a
project's ``env`` block naming ``ANTHROPIC_BASE_URL``, its ``airlock.domainSafetyUrl``) would
let its host out past the lock, as an ``allowedDomains`` entry of that file would."""


def _trusted(origin: Origin) -> bool:
    return origin.source in TRUSTED_SOURCES


def _hosts_kept(context: Context, keep: Callable[[Origin], bool]) -> set[str]:
    """The flows' hosts the engine finds with only the values whose origin ``keep`` takes
    (:func:`_trusted_context`): a host not among them is brought by the others alone."""
    kept = _trusted_context(context, keep)
    return {host for _, host in flow_hosts(kept, decide(kept))}


def flow_hosts_set_aside(context: Context, decisions: Decisions) -> tuple[str, ...]:
    """The flows' hosts that :func:`default_rules` sets aside under ``allowManagedDomainsOnly``,
    in words, each with the settings files whose values bring it: those of the files that
    bring it by themselves (the engine asked again with each file's values added to the
    managed settings' and the environment's), else all the files that were left out."""
    theirs = _hosts_kept(context, _trusted)
    aside = [(flow, host) for flow, host in flow_hosts(context, decisions) if host not in theirs]
    if not aside:
        return ()
    others = list(dict.fromkeys(origin for origin in _origins(context) if not _trusted(origin)))
    brought: dict[Origin, set[str]] = {}
    for other in others:
        widened = _trusted_context(context, partial(_trusted_or, other))
        brought[other] = {host for _, host in flow_hosts(widened, decide(widened))}
    said = []
    for flow, host in aside:
        files = [origin for origin in others if host in brought[origin]] or others
        named = " and ".join(origin.describe() for origin in files) or "other settings files"
        said.append(f"{host!r} (the host of flow {flow}, from the values in {named})")
    return tuple(said)


def flow_hosts_brought_by(
    context: Context, decisions: Decisions, sources: frozenset[Source]
) -> tuple[tuple[str, str], ...]:
    """The flows' hosts, each with its flow, that the values of files of ``sources`` alone
    bring (a project's ``env`` block naming ``ANTHROPIC_BASE_URL``): those the engine no
    longer finds once every value from those files is left out."""
    theirs = _hosts_kept(context, lambda origin: origin.source not in sources)
    return tuple(
        (flow, host) for flow, host in flow_hosts(context, decisions) if host not in theirs
    )


def _trusted_or(other: Origin, origin: Origin) -> bool:
    return _trusted(origin) or origin == other


def _origins(context: Context) -> list[Origin]:
    """Where each value of ``context`` came from: its variables' and its settings'."""
    found = [origin for var in context.env.values() for _, origin in var.values]
    found += [
        value.origin
        for field in fields(context)
        if isinstance(value := getattr(context, field.name), Setting)
    ]
    return found


def _trusted_context(context: Context, keep: Callable[[Origin], bool]) -> Context:
    """``context`` as the values from origins ``keep`` accepts alone make it: each variable's
    other values left out, each setting from another file back to its built-in default (the
    settings files are read highest first, and the managed settings are the highest: a setting
    another file gave is one they leave unset). Restricting lists (``permissions``) stay."""
    changes: dict[str, Any] = {}
    for field in fields(context):
        value = getattr(context, field.name)
        if isinstance(value, Setting) and not keep(value.origin):
            changes[field.name] = field.default
    env = {
        name: Var(name, tuple(item for item in var.values if keep(item[1])))
        for name, var in context.env.items()
    }
    changes["env"] = {name: var for name, var in env.items() if var.values}
    changes["cleanup_period_days_by_file"] = tuple(
        setting for setting in context.cleanup_period_days_by_file if keep(setting.origin)
    )
    return replace(context, **changes)
