"""Host rules: the web-fetch rule engine's patterns with ports; deny beats allow; the policy's defaults."""

from __future__ import annotations

import pytest

from airlock.egress.config import EgressConfig, HostRule
from airlock.egress.report import HostStats
from airlock.egress.rules import EgressRules, default_rules
from airlock.errors import UsageError
from airlock.policy import decide
from tests.policy.helpers import context


def _rules(allow: list[str], deny: list[str] = (), **changes: object) -> EgressRules:  # type: ignore[assignment]
    return EgressRules(
        EgressConfig(
            allow=EgressConfig.rules(allow, "--allow"),
            deny=EgressConfig.rules(list(deny), "--deny"),
            **changes,  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("allow", "deny", "host", "port", "decision"),
    [
        (["example.com"], [], "example.com", 443, "allow"),
        (["example.com"], [], "EXAMPLE.com.", 443, "allow"),
        (["example.com"], [], "www.example.com", 443, "deny"),
        (["*.example.com"], [], "a.b.example.com", 443, "allow"),
        (["*.example.com"], [], "example.com", 443, "deny"),
        (["example.com:8443"], [], "example.com", 8443, "allow"),
        (["example.com:8443"], [], "example.com", 443, "deny"),
        (["WebFetch(domain:docs.example.com)"], [], "docs.example.com", 443, "allow"),
        (["*"], ["evil.com"], "evil.com", 443, "deny"),
        (["*.example.com"], ["bad.example.com"], "bad.example.com", 80, "deny"),
        (["*.example.com"], ["bad.example.com:80"], "bad.example.com", 443, "allow"),
        (["cdn*.example.com"], [], "cdn7.example.com", 443, "allow"),
        (["1.2.3.4"], [], "0x01020304", 443, "allow"),
        ([], ["1.2.3.4"], "16909060", 443, "deny"),
        ([], [], "anything.org", 443, "deny"),
        (["[::1]"], [], "::1", 8080, "allow"),
        (["[2001:db8::1]:443"], [], "2001:db8:0:0::1", 443, "allow"),
        (["[2001:db8::1]:443"], [], "2001:db8::1", 80, "deny"),
        (["*"], ["[2001:db8::1]"], "2001:DB8::1", 443, "deny"),
    ],
    ids=[
        "exact_host",
        "case_and_trailing_dot_ignored",
        "exact_does_not_cover_subdomain",
        "wildcard_covers_any_depth",
        "wildcard_not_the_apex",
        "port_matches",
        "port_mismatch",
        "webfetch_rule_allows",
        "deny_beats_allow_all_pattern",
        "deny_beats_wildcard_allow",
        "deny_on_other_port_does_not_apply",
        "wildcard_within_label",
        "address_spelt_in_hex_is_the_address",
        "deny_of_address_not_bypassed_by_decimal",
        "nothing_matches_default_deny",
        "ipv6_loopback_in_brackets",
        "ipv6_with_port_any_spelling",
        "ipv6_port_mismatch",
        "ipv6_deny_beats_allow_all_pattern",
    ],
)
def test_rule_table(allow: list[str], deny: list[str], host: str, port: int, decision: str) -> None:
    """Each pattern decides as the web-fetch rule engine matches it, with the port."""
    assert _rules(allow, deny).check(host, port).decision == decision


def test_allow_all_audits_but_a_deny_still_wins() -> None:
    """--allow-all lets unlisted hosts through, naming itself; a deny still refuses."""
    rules = _rules([], ["evil.com"], allow_all=True)
    assert rules.check("any.org", 443).reason == "allowed by --allow-all (audit only)"
    assert rules.check("evil.com", 443).decision == "deny"


def test_the_reason_names_the_rule_and_its_origin() -> None:
    """A refusal says which pattern and where it came from."""
    rules = EgressRules(
        EgressConfig(
            deny=(HostRule.parse("*.ads.test", "sandbox.network.deniedDomains in /s.json"),)
        )
    )
    assert rules.check("x.ads.test", 443).reason == (
        "denied by '*.ads.test' (sandbox.network.deniedDomains in /s.json)"
    )


def test_only_a_rule_naming_the_host_is_explicit() -> None:
    """The relaxed address check applies to exact hosts, never to wildcards."""
    rules = _rules(["db.internal", "*.corp.test", "[fd00::5]"])
    assert rules.check("db.internal", 5432).explicit
    assert rules.check("fd00::5", 443).explicit
    assert not rules.check("x.corp.test", 443).explicit


def test_an_allow_naming_the_host_counts_after_a_wildcard_that_covers_it() -> None:
    """``--allow '*.test' --allow db.test:5432``, or a settings file's wildcard before the
    user's ``--allow``: the host is named by the user, so it may reach a private address (the
    first rule decided alone, and the refusal told the user to add what they had given)."""
    rules = _rules(["*.test", "db.test:5432"])
    decided = rules.check("db.test", 5432)
    assert decided.explicit
    assert decided.reason == "allowed by 'db.test:5432' (--allow)"
    assert not rules.check("db.test", 5433).explicit  # the named rule's port only
    assert not rules.check("other.test", 5432).explicit
    from_settings = EgressRules(
        EgressConfig(
            allow=(
                HostRule.parse("*.test", "sandbox.network.allowedDomains in /s.json"),
                *EgressConfig.rules(["db.test"], "--allow"),
            )
        )
    )
    assert from_settings.check("db.test", 443).explicit


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http://example.com",
        "example.com/path",
        "a..b",
        "x.com:0",
        "x.com:99999",
        "x.com:http",
        "::1",
        "[::1",
        "[::1]x",
        "[zz::1]:443",
    ],
)
def test_unreadable_patterns_are_refused_with_what_is_valid(text: str) -> None:
    """A bad pattern is a usage error naming it and the valid forms."""
    with pytest.raises(UsageError, match=r"example\.com:443") as refused:
        HostRule.parse(text, "--allow")
    message = str(refused.value)
    assert "WebFetch" not in message  # not what was written: not offered
    assert message.count("such as") <= 1, message  # the host forms said once


@pytest.mark.parametrize("text", ["WebFetch(domain:example.com:443)", "WebFetch(domain:a b)"])
def test_an_unreadable_webfetch_rule_is_told_the_webfetch_forms(text: str) -> None:
    """A ``WebFetch(domain:…)`` rule with a port is told that it takes none, and how a port is
    limited; not offered ``example.com:443`` as a valid form in the same breath."""
    with pytest.raises(UsageError) as refused:
        HostRule.parse(text, "permissions.deny in /s.json")
    message = str(refused.value)
    assert "without a port" in message and "--deny HOST:PORT" in message
    assert "example.com:443 or" not in message


@pytest.mark.parametrize(
    ("environ", "allowed", "refused"),
    [
        ({}, ["api.anthropic.com"], ["statsig.anthropic.com", "example.com"]),
        (
            {"ANTHROPIC_BASE_URL": "https://llm.corp.test/v1"},
            ["llm.corp.test", "api.anthropic.com"],
            ["example.com"],
        ),
        (
            {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1"},
            ["bedrock-runtime.eu-west-1.amazonaws.com"],
            [
                "s3.amazonaws.com",
                "bedrock-runtime.s3.amazonaws.com",  # the bucket named bedrock-runtime
                "bedrock-runtime.us-east-1.amazonaws.com",
            ],
        ),
        (
            {"CLAUDE_CODE_USE_BEDROCK": "1"},
            [],
            ["bedrock-runtime.eu-west-1.amazonaws.com"],
        ),
        (
            {
                "CLAUDE_CODE_USE_BEDROCK": "1",
                "AWS_REGION": "eu-west-1",
                "ANTHROPIC_BEDROCK_BASE_URL": "https://bedrock.corp.test",
            },
            ["bedrock.corp.test"],
            ["bedrock-runtime.eu-west-1.amazonaws.com"],
        ),
        (
            {"CLAUDE_CODE_USE_FOUNDRY": "1", "ANTHROPIC_FOUNDRY_RESOURCE": "my-team"},
            ["my-team.services.ai.azure.com"],
            ["someone-else.services.ai.azure.com"],
        ),
        (
            {"CLAUDE_CODE_USE_FOUNDRY": "1", "ANTHROPIC_FOUNDRY_RESOURCE": "a.b"},
            [],
            ["a.b.services.ai.azure.com"],
        ),
        (
            {"CLAUDE_CODE_USE_VERTEX": "1"},
            ["us-east5-aiplatform.googleapis.com"],
            ["storage.googleapis.com"],
        ),
        (
            {"CLAUDE_CODE_USE_BEDROCK": "1", "DISABLE_TELEMETRY": "1", "skip_preflight": "1"},
            [],
            ["api.anthropic.com"],
        ),
        (
            {"AIRLOCK_DOMAIN_SAFETY_URL": "https://safety.corp.test"},
            ["safety.corp.test"],
            [],
        ),
    ],
    ids=[
        "first_party_api",
        "base_url_host_and_vendor_flows",
        "bedrock_the_regions_host_only",
        "bedrock_without_a_region_none",
        "bedrock_base_url",
        "foundry_the_resources_host_only",
        "foundry_resource_not_a_label_none",
        "vertex_regions",
        "bedrock_with_vendor_flows_off",
        "domain_safety_service",
    ],
)
def test_default_allow_is_the_hosts_of_flows_the_engine_has_on(
    environ: dict[str, str], allowed: list[str], refused: list[str]
) -> None:
    """With no rule of the user's, exactly the on flows' hosts are let out."""
    settings = {"skip_webfetch_preflight": True} if environ.pop("skip_preflight", None) else {}
    ctx = context(environ, **settings)
    rules = EgressRules(EgressConfig(default_allow=default_rules(ctx, decide(ctx))))
    for host in allowed:
        verdict = rules.check(host, 443)
        assert verdict.allowed, host
        assert verdict.reason.startswith("allowed by") and "policy: flow" in verdict.reason
    for host in refused:
        assert not rules.check(host, 443).allowed, host


CARRYING = [
    pytest.param("::5db8:d70e", id="ipv4_compatible"),
    pytest.param("64:ff9b::93.184.215.14", id="nat64"),
    pytest.param("2002:5db8:d70e::1", id="6to4"),
    pytest.param("2001:0:4136:e378:8000:63bf:a247:28f1", id="teredo"),
]


@pytest.mark.parametrize("host", CARRYING)
def test_an_ipv4_deny_covers_the_ipv6_addresses_that_carry_it(host: str) -> None:
    """A deny rule for an IPv4 address refuses every IPv6 address that carries it, as the
    web-fetch rules do; the reason names the rule."""
    rules = _rules(["*"], ["93.184.215.14"], allow_all=True)
    verdict = rules.check(host, 443)
    assert verdict.decision == "deny"
    assert verdict.reason == "denied by '93.184.215.14' (--deny)"
    assert _rules(["*"], ["93.184.215.14:80"]).check(host, 443).decision == "allow"


@pytest.mark.parametrize("host", CARRYING)
def test_an_ipv4_allow_covers_its_own_address_only(host: str) -> None:
    """An allow rule for an IPv4 address does not let the IPv6 addresses that carry it out."""
    rules = _rules(["93.184.215.14"])
    assert rules.check("93.184.215.14", 443).allowed
    assert rules.check(host, 443).decision == "deny"


def test_a_host_longer_than_a_name_may_be_is_invalid_and_shown_cut() -> None:
    """Past 253 characters no host is valid: refused as such, named by its start and length
    (whatever the allow rules say), and a name of 253 is judged as any other."""
    rules = _rules(["*.example.com"], allow_all=True)
    long = "a" * 5000 + ".example.com"
    decision = rules.check(long, 443)
    assert not decision.allowed and "longer than 253 characters" in decision.reason
    assert decision.host == "a" * 60 + "…(cut: 5012 characters)"
    fits = ".".join(["a" * 60] * 3) + "." + "b" * 58 + ".example.com"  # 253
    assert len(fits) == 253 and rules.check(fits, 443).allowed


def test_refusal_reasons_are_counted_within_bounds() -> None:
    """A host's refusals are counted by reason, each cut at 300 characters, and past 20
    distinct reasons the rest together."""
    stats = HostStats()
    for port in range(30):
        stats.refuse(f"no allow rule matches h:{port} (default: deny)")
    stats.refuse("x" * 1000)
    assert len(stats.refused) == 21 and stats.refused["(other reasons)"] == 11
    assert max(len(reason) for reason in stats.refused) <= 301
