"""WebFetch(domain:…) rules match as the reference documents, and deny beats ask beats allow."""

from __future__ import annotations

import ipaddress
import re

import idna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.policy.hosts import HostError, parse_host
from airlock.policy.model import Origin, Permissions, Rule, Source
from airlock.policy.rules import (
    RuleSet,
    Verdict,
    check_host,
    invalid_webfetch_rules,
    matches,
    names_domains,
    normalize_host,
    parse_host_pattern,
    parse_rule,
)

USER = Origin(Source.USER, "/home/u/.claude/settings.json")
PROJECT = Origin(Source.PROJECT, "/p/.claude/settings.json")
MANAGED = Origin(Source.MANAGED, "/etc/claude-code/managed-settings.json")

MATCHING = [
    # (rule, host, matches?)
    pytest.param("WebFetch(domain:example.com)", "example.com", True, id="exact_host"),
    pytest.param("WebFetch(domain:example.com)", "EXAMPLE.com", True, id="host_case_ignored"),
    pytest.param("WebFetch(domain:Example.COM)", "example.com", True, id="rule_case_ignored"),
    pytest.param("WebFetch(domain:example.com.)", "example.com", True, id="rule_trailing_dot"),
    pytest.param("WebFetch(domain:example.com)", "example.com.", True, id="host_trailing_dot"),
    pytest.param(
        "WebFetch(domain:example.com)", "www.example.com", False, id="exact_not_subdomain"
    ),
    pytest.param("WebFetch(domain:example.com)", "example.org", False, id="other_tld"),
    pytest.param(
        "WebFetch(domain:example.com)", "notexample.com", False, id="suffix_is_not_a_label"
    ),
    pytest.param(
        "WebFetch(domain:*.example.com)", "docs.example.com", True, id="star_dot_one_level"
    ),
    pytest.param(
        "WebFetch(domain:*.example.com)", "a.b.c.example.com", True, id="star_dot_any_depth"
    ),
    pytest.param("WebFetch(domain:*.example.com)", "example.com", False, id="star_dot_not_apex"),
    pytest.param(
        "WebFetch(domain:*.example.com)", "evilexample.com", False, id="star_dot_label_boundary"
    ),
    pytest.param("WebFetch(domain:example.*)", "example.org", True, id="star_one_label_tld"),
    pytest.param("WebFetch(domain:example.*)", "example.evil.com", False, id="star_not_two_labels"),
    pytest.param("WebFetch(domain:example.*)", "example", False, id="star_needs_a_label"),
    pytest.param(
        "WebFetch(domain:api.*.example.com)", "api.eu.example.com", True, id="middle_star"
    ),
    pytest.param(
        "WebFetch(domain:api.*.example.com)",
        "api.a.b.example.com",
        False,
        id="middle_star_one_label",
    ),
    pytest.param(
        "WebFetch(domain:cdn*.example.com)", "cdn1.example.com", True, id="star_inside_label"
    ),
    pytest.param(
        "WebFetch(domain:cdn*.example.com)", "img.example.com", False, id="star_inside_label_miss"
    ),
    pytest.param("WebFetch(domain:*)", "anything.test", True, id="domain_star_every_host"),
    pytest.param("WebFetch", "anything.test", True, id="bare_tool_every_host"),
    pytest.param("WebFetch(*)", "anything.test", True, id="tool_star_every_host"),
    pytest.param("WebFetch(domain:bücher.de)", "xn--bcher-kva.de", True, id="idna_rule"),
    pytest.param("WebFetch(domain:xn--bcher-kva.de)", "BÜCHER.de", True, id="idna_host"),
    pytest.param("WebFetch(domain:127.0.0.1)", "127.0.0.1", True, id="ip_address"),
    pytest.param("WebFetch(domain:localhost)", "localhost", True, id="single_label"),
]


@pytest.mark.parametrize(("rule", "host", "expected"), MATCHING)
def test_matching(rule: str, host: str, expected: bool) -> None:
    """Each documented form matches exactly the hosts the reference says."""
    pattern = parse_rule(rule)
    assert pattern is not None
    assert matches(pattern, normalize_host(host)) is expected


@pytest.mark.parametrize(
    "rule",
    ["Bash(curl:*)", "Read(./secrets/**)", "WebSearch", "WebFetchX(domain:a.com)"],
    ids=["bash", "read", "websearch", "longer_tool_name"],
)
def test_other_tools_are_not_webfetch_rules(rule: str) -> None:
    """Rules for other tools are not WebFetch rules and never match."""
    assert parse_rule(rule) is None


@pytest.mark.parametrize(
    "rule",
    [
        "WebFetch(url:https://a.com)",
        "WebFetch(domain:)",
        "WebFetch(domain:https://a.com)",
        "WebFetch(domain:a.com/path)",
        "WebFetch(domain:a..com)",
        "WebFetch(domain:a.com:443)",
        "WebFetch(domain:a.com",
    ],
    ids=["url_spec", "empty", "scheme", "path", "empty_label", "port", "unclosed"],
)
def test_unreadable_rules_are_reported(rule: str) -> None:
    """A WebFetch rule that cannot be read raises, and is named with its file, never dropped silently."""
    with pytest.raises(ValueError, match=r"expected|label"):
        parse_rule(rule)
    problems = invalid_webfetch_rules(Permissions(deny=(Rule(rule, PROJECT),)))
    assert len(problems) == 1
    assert rule in problems[0] and "permissions.deny" in problems[0] and PROJECT.path in problems[0]


def perms(
    allow: list[tuple[str, Origin]] = (),  # type: ignore[assignment]
    ask: list[tuple[str, Origin]] = (),  # type: ignore[assignment]
    deny: list[tuple[str, Origin]] = (),  # type: ignore[assignment]
) -> Permissions:
    def rules(items: list[tuple[str, Origin]]) -> tuple[Rule, ...]:
        return tuple(Rule(text, origin) for text, origin in items)

    return Permissions(rules(allow), rules(ask), rules(deny))


ORDER = [
    pytest.param(perms(), "a.com", Verdict.UNMATCHED, None, id="no_rules_unmatched"),
    pytest.param(
        perms(allow=[("WebFetch(domain:a.com)", USER)]), "a.com", Verdict.ALLOW, USER, id="allow"
    ),
    pytest.param(
        perms(allow=[("WebFetch(domain:a.com)", USER)], deny=[("WebFetch(domain:a.com)", PROJECT)]),
        "a.com",
        Verdict.DENY,
        PROJECT,
        id="deny_in_lower_file_beats_allow",
    ),
    pytest.param(
        perms(allow=[("WebFetch(domain:a.com)", MANAGED)], deny=[("WebFetch(domain:*.com)", USER)]),
        "a.com",
        Verdict.DENY,
        USER,
        id="user_deny_beats_managed_allow",
    ),
    pytest.param(
        perms(allow=[("WebFetch", USER)], ask=[("WebFetch(domain:*.a.com)", PROJECT)]),
        "x.a.com",
        Verdict.ASK,
        PROJECT,
        id="ask_beats_allow",
    ),
    pytest.param(
        perms(ask=[("WebFetch", USER)], deny=[("WebFetch(domain:x.a.com)", PROJECT)]),
        "x.a.com",
        Verdict.DENY,
        PROJECT,
        id="deny_beats_ask",
    ),
    pytest.param(
        perms(deny=[("WebFetch(domain:b.com)", PROJECT)], allow=[("WebFetch", USER)]),
        "a.com",
        Verdict.ALLOW,
        USER,
        id="deny_of_other_host_no_effect",
    ),
    pytest.param(
        perms(deny=[("Bash(curl:*)", PROJECT)], allow=[("WebFetch(domain:a.com)", USER)]),
        "a.com",
        Verdict.ALLOW,
        USER,
        id="other_tool_rules_ignored",
    ),
    pytest.param(
        perms(
            deny=[("WebFetch(domain:a.com/x)", PROJECT)],
            allow=[("WebFetch(domain:a.com)", USER)],
        ),
        "a.com",
        Verdict.ALLOW,
        USER,
        id="unreadable_deny_skipped_but_reported_elsewhere",
    ),
]


@pytest.mark.parametrize(("permissions", "host", "verdict", "origin"), ORDER)
def test_order(
    permissions: Permissions, host: str, verdict: Verdict, origin: Origin | None
) -> None:
    """Deny, then ask, then allow; the first match decides; the verdict names the rule's file."""
    result = check_host(permissions, host)
    assert result.verdict is verdict
    if origin is None:
        assert result.rule is None
        assert "no WebFetch rule" in result.describe()
    else:
        assert result.rule is not None and result.rule.origin == origin
        assert str(origin.path) in result.describe()
        assert f"permissions.{verdict}" in result.describe()


LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
HOST = (
    st.lists(LABEL, min_size=1, max_size=5)
    # a name's last label is no number, as WHATWG's URL parser reads one: digits, or 0x and
    # hex digits ("0x" alone too): a host ending in one is an IPv4 address or not a host
    .filter(lambda labels: re.fullmatch("[0-9]+|0x[0-9a-f]*", labels[-1]) is None)
    .map(".".join)
)


@given(HOST, HOST)
def test_subdomain_rule_matches_exactly_the_strict_subdomains(base: str, host: str) -> None:
    """*.BASE matches HOST exactly when HOST ends with '.BASE'."""
    pattern = parse_rule(f"WebFetch(domain:*.{base})")
    assert pattern is not None
    assert matches(pattern, host) is host.endswith("." + base)


@given(HOST, st.sampled_from(["", "."]), st.booleans())
def test_exact_rule_ignores_case_and_trailing_dot(host: str, dot: str, upper: bool) -> None:
    """An exact rule matches its host whatever the case and trailing dot of either side."""
    shown = (host.upper() if upper else host) + dot
    pattern = parse_rule(f"WebFetch(domain:{shown})")
    assert pattern is not None
    assert (
        check_host(Permissions(deny=(Rule(f"WebFetch(domain:{shown})", USER),)), host).verdict
        is Verdict.DENY
    )
    assert matches(pattern, normalize_host(shown))


SPELLINGS = st.sampled_from([str, hex, lambda v: "0" + oct(v)[2:] if v else "0"])


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(1, 4), SPELLINGS)
def test_address_rule_matches_every_spelling(number: int, parts: int, spell: object) -> None:
    """A deny rule for an IPv4 address matches it however the host writes it (parts, base, IPv4-mapped)."""
    address = ipaddress.IPv4Address(number)
    octets = address.packed
    values = [*octets[: parts - 1], int.from_bytes(octets[parts - 1 :], "big")]
    written = ".".join(spell(v) for v in values)  # type: ignore[operator]
    rules = Permissions(deny=(Rule(f"WebFetch(domain:{address})", USER),))
    for host in (written, f"[::ffff:{address}]", f"{written}."):
        assert check_host(rules, host).verdict is Verdict.DENY, host


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0xE0, max_codepoint=0x24F, categories=["Ll"]),
        min_size=1,
        max_size=8,
    )
)
def test_idn_rule_matches_its_a_label_and_nothing_transitional(label: str) -> None:
    """A rule for a name matches it in U-label and A-label form alike: one name, one meaning."""
    try:
        name = parse_host(f"{label}.example")
    except HostError:
        return  # not a valid IDNA 2008 label: refused everywhere
    a_label = idna.encode(f"{label}.example", uts46=True, transitional=False).decode()
    assert name.text == a_label
    for rule_host, asked in ((f"{label}.example", a_label), (a_label, f"{label}.example")):
        rules = Permissions(deny=(Rule(f"WebFetch(domain:{rule_host})", USER),))
        assert check_host(rules, asked).verdict is Verdict.DENY


@pytest.mark.parametrize(
    ("rule", "host", "verdict"),
    [
        ("WebFetch(domain:fass.de)", "faß.de", Verdict.UNMATCHED),
        ("WebFetch(domain:faß.de)", "fass.de", Verdict.UNMATCHED),
        ("WebFetch(domain:faß.de)", "xn--fa-hia.de", Verdict.DENY),
        ("WebFetch(domain:xn--strae-oqa.de)", "straße.de", Verdict.DENY),
        ("WebFetch(domain:*.straße.de)", "www.xn--strae-oqa.de", Verdict.DENY),
        ("WebFetch(domain:ＥＸＡＭＰＬＥ.com)", "example.com", Verdict.DENY),
        ("WebFetch(domain:127.0.0.1)", "2130706433", Verdict.DENY),
        ("WebFetch(domain:127.0.0.1)", "[::127.0.0.1]", Verdict.DENY),
        ("WebFetch(domain:127.0.0.1)", "[64:ff9b::7f00:1]", Verdict.DENY),
        ("WebFetch(domain:169.254.169.254)", "0xa9fea9fe", Verdict.DENY),
        ("WebFetch(domain:[::1])", "[0:0::1]", Verdict.DENY),
        ("WebFetch(domain:2130706433)", "127.0.0.1", Verdict.DENY),
    ],
)
def test_deny_rules_by_meaning(rule: str, host: str, verdict: Verdict) -> None:
    """Rules and hosts are compared in their canonical forms: IDNA 2008 names, addresses as addresses."""
    assert check_host(Permissions(deny=(Rule(rule, USER),)), host).verdict is verdict


def test_allow_rule_for_an_ipv4_address_does_not_cover_ipv6_carriers() -> None:
    """An allow rule for 10.0.0.1 matches that address, not an IPv6 address that carries it."""
    rules = Permissions(allow=(Rule("WebFetch(domain:10.0.0.1)", USER),))
    assert check_host(rules, "[::ffff:10.0.0.1]").verdict is Verdict.ALLOW  # the same address
    assert check_host(rules, "[64:ff9b::a00:1]").verdict is Verdict.UNMATCHED


@pytest.mark.parametrize(
    ("allow", "host", "explicit"),
    [
        (("WebFetch",), "a.test", False),
        (("WebFetch(domain:*)",), "a.test", False),
        (("WebFetch", "WebFetch(domain:a.test)"), "a.test", True),
        (("WebFetch(domain:*.test)",), "a.test", True),
        (("WebFetch(domain:127.0.0.1)",), "0x7f.1", True),
    ],
)
def test_explicit_allow(allow: tuple[str, ...], host: str, explicit: bool) -> None:
    """Only an allow rule that names the host (or a domain over it) is explicit; one for every host is not."""
    rules = RuleSet.of(Permissions(allow=tuple(Rule(text, USER) for text in allow)))
    assert (rules.explicit_allow(host) is not None) is explicit


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("example.com", "example.com", None),
        ("example.com:8443", "example.com", 8443),
        ("*.example.com:443", ".example.com", 443),
        ("[::1]", "::1", None),
        ("[2001:db8::1]:443", "2001:db8::1", 443),
        ("[2001:DB8:0::1]", "2001:db8::1", None),
        ("[::ffff:127.0.0.1]:80", "127.0.0.1", 80),
        ("127.0.0.1:8080", "127.0.0.1", 8080),
    ],
    ids=[
        "name",
        "name_and_port",
        "wildcard_and_port",
        "ipv6_loopback_in_brackets",
        "ipv6_and_port",
        "ipv6_in_canonical_form",
        "ipv4_mapped_is_the_ipv4_address",
        "ipv4_and_port",
    ],
)
def test_host_patterns_with_ports(text: str, host: str, port: int | None) -> None:
    """HOST[:PORT] patterns, IPv6 addresses in brackets, read into the canonical host and port."""
    pattern, found_port = parse_host_pattern(text)
    assert (pattern.text, found_port) == (host, port)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("::1", r"written in brackets.*\[::1\]:443"),
        ("2001:db8::1:443", r"written in brackets"),
        ("[::1", r"unbalanced '\['"),
        ("[::1]443", r"expected :PORT after \[::1\]"),
        ("[::1]:", r"port '' .* from 1 to 65535"),
        ("[::1]:70000", r"port '70000' .* from 1 to 65535"),
        ("[not-an-address]", r"not a valid IPv6 address"),
        ("[1.2.3.4]", r"not a valid IPv6 address"),
        ("example.com:https", r"port 'https'"),
        ("http://example.com:8080/path", r"is a URL: give the host alone, e.g. example.com:8080"),
    ],
    ids=[
        "ipv6_without_brackets",
        "ipv6_and_port_without_brackets",
        "unbalanced_bracket",
        "junk_after_bracket",
        "empty_port",
        "port_out_of_range",
        "name_in_brackets",
        "ipv4_in_brackets",
        "port_not_a_number",
        "a_url",
    ],
)
def test_bad_host_patterns_say_what_is_wrong(text: str, message: str) -> None:
    """A host pattern that cannot be read is an error naming what is wrong and the valid form."""
    with pytest.raises(ValueError, match=message):
        parse_host_pattern(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WebFetch(domain:example.com)", True),
        (" WebFetch(domain:example.com)", True),
        ("WebFetch( domain:example.com)", True),
        ("WebFetch (domain:example.com) ", True),
        ("WebFetch(domain:*)", True),
        ("WebFetch(domain:bad host)", True),  # unreadable, still a rule naming domains
        ("WebFetch(domain:a(b)", True),
        ("WebFetch (domain:x.com", True),  # unreadable: the caller stops on it
        ("WebFetch(Domain:x.com)", True),
        ("WebFetch(url:x.com)", True),
        ("WebFetch", False),
        ("WebFetch(*)", False),
        ("WebFetch()", False),
        ("WebSearch(domain:example.com)", False),
        ("WebFetchX(domain:example.com)", False),
        ("Bash(curl domain:example.com)", False),
    ],
)
def test_names_domains_is_what_a_sandbox_takes_as_a_network_rule(text: str, expected: bool) -> None:
    assert names_domains(text) is expected
