"""Host rules at scale: the proxy looks a host up among its rules (a dict by host, a walk up
its parent domains, a scan of the patterns with a ``*`` inside a label), and decides as the
plain scan of every rule in order did; a hundred thousand rules from settings cost start-up
and each connection little."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.cli._run_build import egress_config
from airlock.egress.config import ALLOW, ALLOW_OPTION, DENY, EgressConfig, HostRule
from airlock.egress.options import Prepared
from airlock.egress.rules import (
    ASKED,
    MANAGED_ONLY,
    NO_RULE,
    EgressRules,
    RuleDecision,
    host_port,
    how_to_allow,
    how_to_pass_ask,
    how_to_undeny,
)
from airlock.errors import HostError, UsageError
from airlock.policy import decide
from airlock.policy.hosts import parse_host
from airlock.policy.rules import carried_ipv4
from airlock.settings import load
from tests.conftest import write_json

# The linear scan the rules were decided by, kept as the oracle of the index.


def _linear_covering(rules: tuple[HostRule, ...], host: str, port: int) -> HostRule | None:
    carried = carried_ipv4(host)
    for rule in rules:
        if rule.covers(host, port) or (carried is not None and rule.covers(carried, port)):
            return rule
    return None


def _linear_decide(config: EgressConfig, host: str, port: int) -> RuleDecision:
    denied = _linear_covering(config.deny, host, port)
    if denied is not None:
        reason = f"denied by {denied.describe()}"
        return RuleDecision(host, port, DENY, reason, denied, hint=how_to_undeny(denied))
    asked = _linear_covering(config.ask, host, port)
    on_command_line = config.allow_all or any(
        rule.origin == ALLOW_OPTION and rule.covers(host, port) for rule in config.allow
    )
    if asked is not None and not on_command_line:
        reason = f"{ASKED} {asked.describe()}, and the proxy cannot ask"
        hint = how_to_pass_ask(host, port, config.managed_lock)
        return RuleDecision(host, port, DENY, reason, asked, hint=hint)
    for rule in config.allow:
        if rule.covers(host, port):
            if not rule.reaches_private:  # the user's --allow naming the host, wherever it is
                named = (other for other in config.allow if other.reaches_private)
                rule = next((other for other in named if other.covers(host, port)), rule)
            reason = f"allowed by {rule.describe()}"
            return RuleDecision(host, port, ALLOW, reason, rule, explicit=rule.reaches_private)
    for rule in config.default_allow:
        if rule.covers(host, port):
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


# Few labels, so that rules and hosts meet often: exact names, parents, inner wildcards,
# addresses in several spellings, IPv6 addresses that carry an IPv4 one.
_LABELS = ["a", "b", "cdn1", "cdn", "com", "x-y", "1", "0", "127", "10", "xn--bcher-kva"]
_ADDRESSES = [
    "127.0.0.1",
    "10.0.0.1",
    "1.0.0.127",
    "[::1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "[::ffff:127.0.0.1]",
    "[64:ff9b::a00:1]",
]
_HOSTS = [
    "127.0.0.1",
    "0x7f.1",
    "10.0.0.1",
    "1.0.0.127",
    "::1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "::ffff:7f00:1",
    "64:ff9b::a00:1",
    "2001:db8::1",
]
_CARRIERS = {"127.0.0.1": "64:ff9b::7f00:1", "10.0.0.1": "2002:a00:1::", "1.0.0.127": "::1.0.0.127"}
"""IPv6 addresses that carry an IPv4 address a rule may name (NAT64, 6to4, IPv4-compatible)."""
_names = st.lists(st.sampled_from(_LABELS), min_size=1, max_size=4).map(".".join)
_inner = st.sampled_from(["*", "cdn*", "*1", "c*n", "a*"])


@st.composite
def _wildcard_inside(draw: st.DrawFn) -> str:
    labels = draw(st.lists(st.sampled_from(_LABELS), min_size=1, max_size=4))
    labels[draw(st.integers(0, len(labels) - 1))] = draw(_inner)
    return ("*." if draw(st.booleans()) else "") + ".".join(labels)


_hosts_of_rules = st.one_of(
    _names,
    _names.map(lambda name: f"*.{name}"),
    _wildcard_inside(),
    st.just("*"),
    st.sampled_from(_ADDRESSES),
    st.sampled_from(_ADDRESSES),
    st.sampled_from(_ADDRESSES).map(lambda address: f"*.{address.strip('[]')}"),
)


def _rule(text: str, port: int | None, form: str, origin: str) -> HostRule | None:
    if form == "webfetch" and port is None:
        text = f"WebFetch(domain:{text})"
    elif port is not None:
        text = f"{text}:{port}"
    try:
        return HostRule.parse(text, origin)
    except UsageError:  # a pattern the engine does not read (``*.1``…): no rule
        return None


@st.composite
def _cases(draw: st.DrawFn) -> tuple[EgressConfig, list[tuple[str, int]]]:
    """Rules drawn from a few patterns each run, so that the same pattern comes twice in a
    list (from two origins: the first counts) and in two lists (deny beats allow); and hosts
    made from those patterns (``*`` filled in, a label put before) or from nothing."""
    patterns = draw(st.lists(_hosts_of_rules, min_size=1, max_size=5))
    near = st.one_of(
        st.tuples(
            st.sampled_from(["", "", "a.", "cdn1.b."]),
            st.sampled_from(patterns),
            st.sampled_from(["a", "cdn1", "1", "cdn"]),
        ).map(lambda made: made[0] + made[1].strip("[]").removeprefix("*.").replace("*", made[2])),
        st.sampled_from(patterns).map(lambda pattern: _CARRIERS.get(pattern, pattern)),
    )
    far = st.one_of(
        _names,  # some end in a number: no host, refused before the rules
        st.tuples(_names, st.sampled_from(["com", "a", "cdn1"])).map(".".join),
        st.sampled_from(_HOSTS),
    )
    targets = draw(
        st.lists(st.tuples(st.one_of(near, near, far), st.sampled_from([80, 443])), max_size=25)
    )

    def rules(origins: list[str], most: int) -> tuple[HostRule, ...]:
        drawn = draw(
            st.lists(
                st.builds(
                    _rule,
                    st.sampled_from(patterns),
                    st.sampled_from([None, None, 80, 443]),
                    st.sampled_from(["plain", "webfetch"]),
                    st.sampled_from(origins),
                ),
                min_size=1,
                max_size=most,
            )
        )
        return tuple(rule for rule in drawn if rule is not None)

    config = EgressConfig(
        allow=rules([ALLOW_OPTION, "sandbox.network.allowedDomains in /s.json"], 30),
        deny=rules(["--deny", "permissions.deny in /s.json"], 30),
        ask=rules(["permissions.ask in /s.json"], 10),
        default_allow=rules(["policy: flow model_requests is on"], 4),
        allow_all=draw(st.booleans()),
        managed_lock=draw(st.sampled_from([None, "/etc/claude-code/managed-settings.json"])),
    )
    return config, targets


@settings(max_examples=300, deadline=None)
@given(case=_cases())
def test_the_index_decides_as_the_scan_of_every_rule(
    case: tuple[EgressConfig, list[tuple[str, int]]],
) -> None:
    """Deny beats ask beats allow beats the policy's flows beats ``--allow-all``; within a
    list the first rule that covers the host counts, the one named in the reason, the record
    and the 403; a deny or ask rule for an IPv4 address covers the IPv6 addresses that carry
    it. The decision, the reason, the rule and the hint are the plain scan's, for every host
    (the address a name resolved to too: :meth:`EgressRules.denied`)."""
    config, targets = case
    rules = EgressRules(config)
    for host, port in targets:
        try:
            canonical = parse_host(host).text
        except HostError:
            assert rules.check(host, port).reason.startswith("not a valid host: ")
            continue
        assert rules.check(host, port) == _linear_decide(config, canonical, port)
        assert rules.denied(canonical, port) == _linear_covering(config.deny, canonical, port)


_SETTINGS = "sandbox.network.allowedDomains in /s.json"


@pytest.mark.parametrize(
    ("lists", "host", "port", "decided_by"),
    [
        ({"deny": ["127.0.0.1", "*"]}, "64:ff9b::7f00:1", 443, ("127.0.0.1", "--deny")),
        (
            {"deny": ["[64:ff9b::7f00:1]", "127.0.0.1"]},
            "64:ff9b::7f00:1",
            443,
            ("[64:ff9b::7f00:1]", "--deny"),
        ),
        ({"deny": ["*.0.0.1"]}, "127.0.0.1", 80, ("*.0.0.1", "--deny")),
        ({"deny": ["*.example.com"], "allow": ["*"]}, "example.com", 80, ("*", ALLOW_OPTION)),
        (
            {"allow": ["*.example.com", "+*.example.com"]},
            "a.example.com",
            1,
            ("*.example.com", ALLOW_OPTION),
        ),
        (
            {"allow": ["+*.example.com", "*.example.com"]},
            "a.example.com",
            1,
            ("*.example.com", _SETTINGS),
        ),
        ({"allow": ["+x.test", "x.test"]}, "x.test", 1, ("x.test", ALLOW_OPTION)),
        ({"allow": ["+x.test:443", "x.test"]}, "x.test", 443, ("x.test", ALLOW_OPTION)),
        ({"allow": ["+x.test:443", "x.test:443"]}, "x.test", 443, ("x.test:443", ALLOW_OPTION)),
        ({"allow": ["+x.test:443", "+x.test"]}, "x.test", 443, ("x.test:443", _SETTINGS)),
        ({"allow": ["+x.test", "+x.test:443"]}, "x.test", 443, ("x.test", _SETTINGS)),
        ({"allow": ["+*.test:443", "*.test:443"]}, "x.test", 443, ("*.test:443", _SETTINGS)),
        ({"allow": ["+x.test:443", "x.test"]}, "x.test", 80, ("x.test", ALLOW_OPTION)),
        ({"allow": ["+x.test", "x.test:443"]}, "x.test", 443, ("x.test:443", ALLOW_OPTION)),
        (
            {"allow": ["*.b.example.com", "*.example.com"]},
            "a.b.example.com",
            1,
            ("*.b.example.com", ALLOW_OPTION),
        ),
        (
            {"allow": ["*.example.com", "*.b.example.com"]},
            "a.b.example.com",
            1,
            ("*.example.com", ALLOW_OPTION),
        ),
        (
            {"allow": ["cdn*.example.com", "cdn1.example.com"]},
            "cdn1.example.com",
            1,
            ("cdn1.example.com", ALLOW_OPTION),
        ),
        (
            {"allow": ["+cdn*.example.com", "+cdn1.example.com"]},
            "cdn1.example.com",
            1,
            ("cdn*.example.com", _SETTINGS),
        ),
        (
            {"allow": ["cdn1.example.com", "cdn*.example.com"]},
            "cdn1.example.com",
            1,
            ("cdn1.example.com", ALLOW_OPTION),
        ),
        ({"allow": ["+*", "x.test"]}, "x.test", 1, ("x.test", ALLOW_OPTION)),
        ({"allow": ["*", "x.test"]}, "x.test", 1, ("x.test", ALLOW_OPTION)),
        ({"allow": ["x.test", "*"]}, "x.test", 1, ("x.test", ALLOW_OPTION)),
        (
            {"ask": ["127.0.0.1"]},
            "64:ff9b::7f00:1",
            443,
            ("127.0.0.1", "permissions.ask in /s.json"),
        ),
        (
            {"ask": ["127.0.0.1"], "allow": ["+*", "[64:ff9b::7f00:1]"]},
            "64:ff9b::7f00:1",
            443,
            ("[64:ff9b::7f00:1]", ALLOW_OPTION),
        ),
        (
            {"ask": ["x.test"], "allow": ["+x.test"]},
            "x.test",
            443,
            ("x.test", "permissions.ask in /s.json"),
        ),
        ({"allow": ["a.example.com"]}, "b.a.example.com", 1, None),
        ({"allow": ["*.example.com"]}, "example.com", 1, None),
        ({"allow": ["x.test:80"]}, "x.test", 443, None),
    ],
)
def test_the_rule_that_decides_is_the_first_that_covers_the_host(
    lists: dict[str, list[str]], host: str, port: int, decided_by: tuple[str, str] | None
) -> None:
    """Of rules that cover a host the first of its list counts, whichever way it is found (by
    the name, a parent domain, a scan of inner wildcards; on any port or on this one; by the
    address or the IPv4 address it carries), as the scan of every rule decided; but an
    ``--allow`` naming the host (which lets it reach a private address) counts before a
    wildcard or a settings file's rule that comes first. A ``+`` marks an allow rule from
    settings, not ``--allow``."""
    origins = {"deny": "--deny", "ask": "permissions.ask in /s.json", "allow": ALLOW_OPTION}
    parsed = {
        name: tuple(
            HostRule.parse(text[1:], _SETTINGS)
            if text.startswith("+")
            else HostRule.parse(text, origins[name])
            for text in lists.get(name, [])
        )
        for name in origins
    }
    config = EgressConfig(allow=parsed["allow"], deny=parsed["deny"], ask=parsed["ask"])
    decision = EgressRules(config).check(host, port)
    assert decision == _linear_decide(config, host, port)
    found = None if decision.rule is None else (decision.rule.text, decision.rule.origin)
    assert found == decided_by
    assert EgressRules(config).denied(host, port) == _linear_covering(config.deny, host, port)


def _many(count: int, origin: str, form: str = "{}") -> tuple[HostRule, ...]:
    return tuple(HostRule.parse(form.format(f"h{i}.bad{i % 50}.com"), origin) for i in range(count))


def test_a_host_is_decided_among_many_rules_without_reading_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With 30,000 allow and 30,000 deny rules (parent domains, names), deciding 500 hosts no
    rule names, and checking 500 addresses against the deny rules, reads no rule one by one:
    the scan of every rule (10 to 20 ms for each, on the proxy's one event loop) is gone."""
    allow = _many(30_000, "sandbox.network.allowedDomains in /s.json", "*.{}")
    deny = _many(30_000, "permissions.deny in /s.json", "WebFetch(domain:{})")
    rules = EgressRules(EgressConfig(allow=allow, deny=deny))
    read = []
    covers = HostRule.covers

    def counted(rule: HostRule, host: str, port: int) -> bool:
        read.append(rule)
        return covers(rule, host, port)

    monkeypatch.setattr(HostRule, "covers", counted)
    for number in range(500):
        decision = rules.check(f"host{number}.example{number % 7}.test", 443)
        assert decision.reason.startswith(NO_RULE), decision
        assert rules.denied(f"10.0.{number // 250}.{number % 250}", 443) is None
    assert rules.check("h29999.bad49.com", 443).rule == deny[-1]
    assert rules.check("a.h29999.bad49.com", 443).rule == allow[-1]
    assert len(read) <= 2, len(read)  # the two found are checked; no other rule is read


def test_a_hundred_thousand_rules_in_settings_are_read_in_linear_time(
    home: Path, config_dir: Path, project: Path, managed_dir: Path
) -> None:
    """120,000 rules in settings files (``sandbox.network.allowedDomains``,
    ``WebFetch(domain:…)`` allow and deny rules: each file under the 4 MB bound) become the
    proxy's rules, in their order, each with its origin (they were gathered in a tuple added
    to once per rule: quadratic, 50 s for 100,000 rules of one kind)."""
    count = 40_000
    names = [f"h{i}.bad{i % 50}.com" for i in range(count)]
    files = {
        config_dir / "settings.json": {"sandbox": {"network": {"allowedDomains": names}}},
        project / ".claude" / "settings.json": {
            "permissions": {"allow": [f"WebFetch(domain:{name})" for name in names]}
        },
        project / ".claude" / "settings.local.json": {
            "permissions": {"deny": [f"WebFetch(domain:{name})" for name in names]}
        },
    }
    for path, data in files.items():
        assert write_json(path, data).stat().st_size < 4_000_000
    environ = {
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "AIRLOCK_MANAGED_SETTINGS_DIR": str(managed_dir),
    }
    loaded = load(project, environ)
    args = argparse.Namespace(
        allow=["example.org"],
        deny=["evil.test"],
        allow_all=False,
        upstream_proxy=None,
        audit_log=None,
        max_upload_mb=None,
        new_connections_per_second=None,
    )
    config = egress_config(args, loaded, environ, decide(loaded.context), Prepared())
    assert [rule.text for rule in config.allow] == [
        "example.org",
        *names,
        *(f"WebFetch(domain:{name})" for name in names),
    ]
    assert [rule.text for rule in config.deny] == [
        "evil.test",
        *(f"WebFetch(domain:{name})" for name in names),
    ]
    assert config.allow[1].origin.startswith("sandbox.network.allowedDomains in ")
    assert config.allow[-1].origin.startswith("permissions.allow in ")
    assert config.deny[-1].origin.startswith("permissions.deny in ")
