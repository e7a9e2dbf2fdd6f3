"""Permission rules for web fetches: ``WebFetch(domain:…)`` matching, exactly as the reference.

Theory of operation
-------------------
A rule is text in ``permissions.allow``, ``permissions.ask`` or ``permissions.deny`` of any
settings file; the settings adapter unions the lists of every file, keeping each rule's file.
Only rules for the ``WebFetch`` tool concern us; rules for other tools are skipped.

* ``WebFetch`` alone, ``WebFetch(domain:*)`` and ``WebFetch(*)`` match every host.
* ``WebFetch(domain:HOST)`` matches the URL's host. Both sides are read in their one canonical
  form (:func:`airlock.policy.hosts.parse_host`): names by UTS #46 and IDNA 2008 as lower-case
  A-labels (``straße.de`` is ``xn--strae-oqa.de``, never ``strasse.de``; a rule for
  ``fass.de`` does not match ``faß.de``), a trailing ``.`` ignored; addresses as addresses,
  however written (a rule for ``127.0.0.1`` matches ``2130706433``, ``0x7f.1``,
  ``[::ffff:127.0.0.1]``). IPv6 rules are written in brackets: ``WebFetch(domain:[::1])``.
  A deny or ask rule for an IPv4 address also matches the IPv6 addresses that carry it
  (IPv4-compatible, NAT64, 6to4, Teredo); an allow rule matches its own address only.
* ``*.example.com`` matches subdomains at any depth, never ``example.com`` itself.
* Any other ``*`` matches within one label: ``example.*`` matches ``example.org``, not
  ``example.evil.com``; ``cdn*.example.com`` matches ``cdn1.example.com``.

The lists are consulted deny, then ask, then allow; the first match decides, so a deny in any
file beats an allow in any other. No match at all is :attr:`Verdict.UNMATCHED`: the caller
decides what that means (the agent asks; ``airlock fetch``, run by the user, proceeds).

A ``WebFetch(...)`` rule this module cannot read is never dropped in silence:
:func:`invalid_webfetch_rules` names it, its file and what is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from airlock.policy import hosts
from airlock.policy.model import Permissions, Rule

TOOL = "WebFetch"
_RULE = re.compile(r"^\s*WebFetch\s*(?:\((?P<spec>[^()]*)\))?\s*$")
_LABEL = re.compile(r"^[a-z0-9_*](?:[a-z0-9_*-]{0,61}[a-z0-9_*])?$")


class Verdict(StrEnum):
    """What the rules say about a host."""

    DENY = "deny"
    ASK = "ask"
    ALLOW = "allow"
    UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """The rules' answer for one host, with the deciding rule and the file it came from."""

    host: str
    verdict: Verdict
    rule: Rule | None = None

    def describe(self) -> str:
        """Say what decided, naming the rule and its file."""
        if self.rule is None:
            return f"no WebFetch rule matches {self.host}"
        where = self.rule.origin.describe()
        return f"{self.rule.text} in permissions.{self.verdict} of {where} matches {self.host}"


@dataclass(frozen=True, slots=True)
class DomainPattern:
    """A parsed ``WebFetch`` rule: ``labels`` of the domain, or every host when ``any_host``."""

    labels: tuple[str, ...] = ()
    any_host: bool = False
    subdomains_only: bool = False
    """``*.example.com``: ``labels`` is the suffix, and at least one more label is required."""
    wildcard: bool = False
    """Some label holds a ``*``: matched label by label; otherwise by plain string comparison."""
    text: str = ""
    """The labels joined, with a leading ``.`` when ``subdomains_only``: the fast comparison."""
    address: bool = False
    """The rule names one IP address (``text`` is its canonical form)."""


def normalize_host(host: str) -> str:
    """The host as rules compare it: its canonical text (:func:`airlock.policy.hosts.normalize_host`)."""
    return hosts.normalize_host(host)


@lru_cache(maxsize=4096)
def parse_rule(text: str) -> DomainPattern | None:
    """Parse one rule; ``None`` when it is not a ``WebFetch`` rule at all.

    Raises:
        ValueError: a ``WebFetch`` rule that cannot be read, with what is valid.
    """
    if not text.lstrip().startswith(TOOL):
        return None
    found = _RULE.match(text)
    if found is None:
        if re.match(r"^\s*WebFetch\w", text):
            return None  # another tool whose name starts with WebFetch
        raise ValueError("expected WebFetch or WebFetch(domain:HOST)")
    spec = found.group("spec")
    if spec is None or spec.strip() in ("", "*"):
        return DomainPattern(any_host=True)
    kind, colon, value = spec.partition(":")
    if not colon or kind.strip() != "domain":
        raise ValueError(f"expected domain:HOST inside the parentheses, got {spec!r}")
    return parse_domain(value)


def names_domains(text: str) -> bool:
    """Whether ``text`` is a ``WebFetch`` rule naming domains (``WebFetch(domain:…)``, in any
    spelling :func:`parse_rule` reads: `` WebFetch(domain:x)``, ``WebFetch( domain:x)``), what
    the reference agent's sandbox takes as a network rule, or a ``WebFetch`` rule that cannot
    be read (the caller stops on it: it may have meant one). ``WebFetch`` alone or
    ``WebFetch(*)`` rules the tool, not the network."""
    try:
        pattern = parse_rule(text)
    except ValueError:
        return True
    found = _RULE.match(text)
    if pattern is None or found is None:
        return False
    kind, colon, _ = (found.group("spec") or "").partition(":")
    return bool(colon) and kind.strip() == "domain"


def parse_domain(value: str) -> DomainPattern:
    """Parse the ``HOST`` of ``WebFetch(domain:HOST)``.

    Raises:
        ValueError: an empty host, an empty label, a scheme, a path or a port; a name that
            UTS #46 / IDNA 2008 refuses.
    """
    text = value.strip()
    if text == "*":
        return DomainPattern(any_host=True)
    if (
        not text
        or any(mark in text for mark in ("/", "@", " ", "?"))
        or (":" in text and not text.startswith("["))
    ):
        raise ValueError(f"expected a hostname such as example.com or *.example.com, got {value!r}")
    if "*" not in text:
        host = hosts.parse_host(text)
        return DomainPattern(
            tuple(host.text.split(".")) if host.name else (host.text,),
            text=host.text,
            address=host.address is not None,
        )
    subdomains_only = text.startswith("*.")
    labels = tuple(_pattern_labels(value, text[2:] if subdomains_only else text))
    joined = ".".join(labels)
    return DomainPattern(
        labels,
        subdomains_only=subdomains_only,
        wildcard="*" in joined,
        text=f".{joined}" if subdomains_only else joined,
    )


def parse_host_pattern(value: str) -> tuple[DomainPattern, int | None]:
    """Parse ``HOST`` or ``HOST:PORT`` as the egress rules take it (``--allow``, ``--deny``,
    ``sandbox.network.allowedDomains``): a host of :func:`parse_domain` and an optional port.
    An IPv6 address is written in brackets, as in a URL: ``[::1]``, ``[2001:db8::1]:443``.

    Raises:
        ValueError: the host cannot be read (:func:`parse_domain`), an IPv6 address without
            brackets, an unbalanced ``[``, a port that is not a number from 1 to 65535, or a
            URL instead of a host.
    """
    text = value.strip()
    port: str | None = None
    _, separator, rest = text.partition("://")
    if separator:  # a URL pasted whole: its host and port are the rule
        authority = rest.split("/", 1)[0]
        raise ValueError(
            f"{value!r} is a URL: give the host alone, e.g. {authority or 'example.com'}"
        )
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(
                f"{value!r} has an unbalanced '[': expected [IPv6 address] or [IPv6 address]:PORT"
            )
        host, rest = text[: end + 1], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected :PORT after {host} in {value!r}, got {rest!r}")
            port = rest[1:]
    elif text.count(":") > 1:
        raise ValueError(
            f"{value!r}: an IPv6 address is written in brackets, with an optional port: "
            f"[{text}] or [{text}]:443"
        )
    else:
        host, colon, after = text.partition(":")
        port = after if colon else None
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"port {port!r} of {value!r} is not a number from 1 to 65535")
    return parse_domain(host), None if port is None else int(port)


def _pattern_labels(value: str, text: str) -> list[str]:
    """The labels of a wildcard pattern: ``*`` kept, every other part in its canonical form."""
    labels: list[str] = []
    for label in text.strip().rstrip(".").split("."):
        if "*" not in label:
            label = hosts.canonical_label(label) if label else label
        else:
            label = label.lower()
        if not _LABEL.match(label):
            raise ValueError(
                f"label {label!r} of {value!r} is not a valid hostname label (a label with a '*' "
                "must be ASCII letters, digits, '-' and '_')"
            )
        labels.append(label)
    return labels


def matches(pattern: DomainPattern, host: str) -> bool:
    """Whether ``pattern`` matches ``host`` (already normalised by :func:`normalize_host`)."""
    if pattern.any_host:
        return True
    if not pattern.wildcard:
        return host.endswith(pattern.text) if pattern.subdomains_only else host == pattern.text
    labels = host.split(".")
    if pattern.subdomains_only:
        if len(labels) <= len(pattern.labels):
            return False
        labels = labels[len(labels) - len(pattern.labels) :]
    elif len(labels) != len(pattern.labels):
        return False
    return all(_label_matches(want, got) for want, got in zip(pattern.labels, labels, strict=True))


def _label_matches(want: str, got: str) -> bool:
    if "*" not in want:
        return want == got
    if want == "*":
        return got != ""
    parts = (re.escape(part) for part in want.split("*"))
    return re.fullmatch("[^.]*".join(parts), got) is not None


def _webfetch_rules(rules: tuple[Rule, ...]) -> tuple[tuple[Rule, DomainPattern], ...]:
    parsed: list[tuple[Rule, DomainPattern]] = []
    for rule in rules:
        try:
            pattern = parse_rule(rule.text)
        except ValueError:
            continue
        if pattern is not None:
            parsed.append((rule, pattern))
    return tuple(parsed)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The readable WebFetch rules of a :class:`Permissions`, parsed once, in the order they count."""

    ordered: tuple[tuple[Verdict, tuple[tuple[Rule, DomainPattern], ...]], ...]

    @classmethod
    def of(cls, permissions: Permissions) -> RuleSet:
        """Parse the rules of every list: deny, then ask, then allow."""
        return cls(
            (
                (Verdict.DENY, _webfetch_rules(permissions.deny)),
                (Verdict.ASK, _webfetch_rules(permissions.ask)),
                (Verdict.ALLOW, _webfetch_rules(permissions.allow)),
            )
        )

    def check(self, host: str) -> RuleVerdict:
        """Decide ``host``: deny, then ask, then allow; the first match decides."""
        wanted = normalize_host(host)
        carried = carried_ipv4(wanted)
        for verdict, rules in self.ordered:
            for rule, pattern in rules:
                if matches(pattern, wanted) or (
                    carried is not None
                    and verdict is not Verdict.ALLOW
                    and matches(pattern, carried)
                ):
                    return RuleVerdict(wanted, verdict, rule)
        return RuleVerdict(wanted, Verdict.UNMATCHED)

    def explicit_allow(self, host: str) -> RuleVerdict | None:
        """The allow rule that names ``host`` itself (not ``WebFetch`` or ``domain:*``), when the
        rules decide ``host`` by it; ``None`` otherwise.

        What lets a fetch reach a private address (loopback, the local network, cloud
        metadata): a rule for every host is no such permission.
        """
        found = self.check(host)
        if found.verdict is not Verdict.ALLOW:
            return None
        for verdict, rules in self.ordered:
            for rule, pattern in rules:
                if (
                    verdict is Verdict.ALLOW
                    and not pattern.any_host
                    and matches(pattern, found.host)
                ):
                    return RuleVerdict(found.host, verdict, rule)
        return None


def carried_ipv4(host: str) -> str | None:
    """The IPv4 address an IPv6 host carries (IPv4-compatible, NAT64, 6to4, Teredo), as text;
    ``None`` for a name or a plain address.

    A deny (or ask) rule for that IPv4 address also matches ``host``; an allow rule does not
    (:meth:`RuleSet.check`, and the proxy's :class:`~airlock.egress.rules.EgressRules`)."""
    if ":" not in host:
        return None
    try:
        address = hosts.parse_host(host).address
    except ValueError:
        return None
    inner = None if address is None else hosts.embedded_ipv4(address)
    return None if inner is None else str(inner)


def check_host(permissions: Permissions, host: str) -> RuleVerdict:
    """Decide ``host`` by the rules: deny, then ask, then allow; the first match decides."""
    return RuleSet.of(permissions).check(host)


def invalid_webfetch_rules(permissions: Permissions) -> tuple[str, ...]:
    """Every ``WebFetch`` rule that cannot be read, in words: the rule, its list, its file, why."""
    found: list[str] = []
    for name, rules in (
        ("deny", permissions.deny),
        ("ask", permissions.ask),
        ("allow", permissions.allow),
    ):
        for rule in rules:
            try:
                parse_rule(rule.text)
            except ValueError as error:
                where = rule.origin.describe()
                found.append(f"{rule.text!r} in permissions.{name} of {where}: {error}")
    return tuple(found)
