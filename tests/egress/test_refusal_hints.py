"""What a refusal says lets the host through, and only what can: ask rules (the proxy cannot
ask), private addresses (a settings rule never reaches one), the managed settings' lock; and
the plain-request and rate-limit answers that said it badly."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from airlock.egress import EgressConfig, Limits, start_proxy
from airlock.egress.audit_read import read_records
from airlock.egress.config import HostRule
from airlock.egress.limits import RateLimiter
from airlock.egress.report import HostReport, ProxyReport
from airlock.egress.rules import EgressRules
from airlock.errors import DestinationRefused
from tests.egress.origin import _Site, config, exchange, listener, running

SETTINGS = "user settings /home/me/.claude/settings.json"


def _rules(
    allow: tuple[HostRule, ...] = (), ask: tuple[str, ...] = (), **changes: object
) -> EgressRules:
    return EgressRules(
        EgressConfig(
            allow=allow,
            ask=EgressConfig.rules(list(ask), f"permissions.ask in {SETTINGS}"),
            **changes,  # type: ignore[arg-type]
        )
    )


EVERY_HOST = EgressConfig.rules(["WebFetch(domain:*)"], f"permissions.allow in {SETTINGS}")


def test_an_ask_rule_refuses_what_a_wider_allow_rule_lets_through() -> None:
    """The web-fetch guard's order is deny, ask, allow: ``WebFetch(domain:*)`` allowed and
    ``WebFetch(domain:8.8.4.4)`` asked, the proxy (which cannot ask) refuses 8.8.4.4, naming
    the ask rule and its file and that ``--allow`` lets it through; other hosts pass."""
    rules = _rules(EVERY_HOST, ("WebFetch(domain:8.8.4.4)",))
    refused = rules.check("8.8.4.4", 80)
    assert not refused.allowed
    assert "'WebFetch(domain:8.8.4.4)' (permissions.ask in user settings" in refused.reason
    assert "cannot ask" in refused.reason
    assert "--allow 8.8.4.4" in refused.hint and "for this run" in refused.hint
    assert rules.check("8.8.8.8", 80).allowed


def test_an_ask_rule_for_an_ipv4_address_covers_the_ipv6_that_carries_it() -> None:
    """As a deny rule does (NAT64 ``64:ff9b::/96`` carries 8.8.4.4): the guard's reach."""
    rules = _rules(EVERY_HOST, ("WebFetch(domain:8.8.4.4)",))
    assert not rules.check("64:ff9b::808:404", 443).allowed


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"allow": EgressConfig.rules(["8.8.4.4"], "--allow")}, id="allow"),
        pytest.param({"allow": EgressConfig.rules(["8.8.4.4:80"], "--allow")}, id="allow_port"),
        pytest.param({"allow_all": True}, id="allow_all"),
    ],
)
def test_the_users_own_command_line_passes_an_ask_rule(changes: dict[str, object]) -> None:
    """The user's ``--allow`` (or ``--allow-all``) is their answer for this run."""
    assert _rules(ask=("WebFetch(domain:8.8.4.4)",), **changes).check("8.8.4.4", 80).allowed


def test_a_settings_allow_rule_does_not_pass_an_ask_rule() -> None:
    """An allow rule of a settings file is no answer to an ask: still refused."""
    allow = EgressConfig.rules(["8.8.4.4"], f"sandbox.network.allowedDomains in {SETTINGS}")
    assert not _rules(allow, ("WebFetch(domain:8.8.4.4)",)).check("8.8.4.4", 80).allowed


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("127.0.0.3", "127.0.0.3"),
        ("localhost", "localhost"),
        ("10.1.2.3", "10.1.2.3"),
        ("::1", "[::1]"),
        ("::ffff:192.168.1.1", "192.168.1.1"),
    ],
)
def test_a_private_host_is_offered_only_allow(host: str, shown: str) -> None:
    """A loopback or private host no rule names: the hint offers ``--allow HOST:PORT`` (the
    command line's rule reaches it), never a settings entry (which never does)."""
    decision = _rules().check(host, 18080)
    assert f"--allow {shown}:18080" in decision.hint
    assert "allowedDomains" not in decision.hint and "settings.json" not in decision.hint


def test_a_cloud_metadata_address_is_offered_nothing() -> None:
    """No rule reaches a metadata service: the hint says so, and offers no rule."""
    hint = _rules().check("169.254.169.254", 80).hint
    assert "never reached" in hint and "--allow" not in hint


def test_a_public_host_is_still_offered_allow_and_the_settings() -> None:
    hint = _rules().check("example.org", 443).hint
    assert "--allow example.org" in hint and "sandbox.network.allowedDomains" in hint


def test_an_ipv6_host_is_shown_in_brackets_in_the_reason() -> None:
    assert "[::1]:18080 (default: deny)" in _rules().check("::1", 18080).reason


def test_under_the_managed_lock_only_the_managed_settings_are_offered() -> None:
    """``allowManagedDomainsOnly``: neither ``--allow`` nor another settings file can allow a
    host, so neither is offered; the hint names the managed settings."""
    lock = "managed settings /etc/claude-code/managed-settings.json"
    for host in ("example.org", "127.0.0.3"):
        decision = _rules(managed_lock=lock).check(host, 443)
        assert not decision.allowed
        assert lock in decision.reason and lock in decision.hint
        assert "run again" not in decision.hint and ".claude/settings.json" not in decision.hint
    private = _rules(managed_lock=lock).check("127.0.0.3", 443).hint
    assert "cannot be reached in this run" in private and "administrator" not in private
    asked = _rules(EVERY_HOST, ("WebFetch(domain:8.8.4.4)",), managed_lock=lock)
    assert "run again" not in asked.check("8.8.4.4", 80).hint


def _report(*hosts: tuple[str, str]) -> ProxyReport:
    return ProxyReport(
        run_id="run",
        hosts=tuple(HostReport(host, 0, 0, 0, 0, ((reason, 1),)) for host, reason in hosts),
        final_hash=None,
        audit_log=None,
    )


def test_the_report_offers_only_allow_for_private_hosts() -> None:
    """The end-of-run note: a loopback host gets ``--allow`` alone; a metadata address none."""
    report = _report(
        ("127.0.0.3", "no allow rule matches 127.0.0.3:18080 (default: deny)"),
        ("169.254.169.254", "no allow rule matches 169.254.169.254:80 (default: deny)"),
    )
    [note] = [line for line in report.lines() if "run again with" in line]
    assert "--allow 127.0.0.3" in note
    assert "allowedDomains" not in note and "169.254.169.254" not in note


def test_the_report_names_settings_for_public_hosts_only() -> None:
    report = _report(
        ("example.org", "no allow rule matches example.org:443 (default: deny)"),
        ("::1", "no allow rule matches [::1]:8080 (default: deny)"),
    )
    [note] = [line for line in report.lines() if "run again with" in line]
    assert "--allow example.org --allow [::1]" in note
    assert "name example.org in sandbox.network.allowedDomains" in note
    assert "never reaches [::1]" in note


def test_the_report_under_the_managed_lock_offers_no_allow() -> None:
    reason = (
        "no managed allow rule matches example.org:443 (allowManagedDomainsOnly in managed "
        "settings /etc/claude-code/managed-settings.json)"
    )
    lines = _report(("example.org", reason)).lines()
    assert not [line for line in lines if "run again" in line]
    [note] = [line for line in lines if "allowManagedDomainsOnly" in line and "refused as" in line]
    assert "example.org" in note


def test_a_token_given_back_is_taken_again() -> None:
    limiter = RateLimiter(1)
    assert limiter.admit("h", 0.0)
    limiter.give_back("h")
    assert limiter.admit("h", 0.0) and not limiter.admit("h", 0.0)


def test_a_host_name_with_an_underscore_is_served_over_plain_http(
    site: _Site, tmp_path: Path
) -> None:
    """``--allow my_svc`` and ``GET http://my_svc:PORT/``: the rules and ``CONNECT`` read such
    names (a container's, a service's), and so does a plain request now (it got ``400
    malformed URL``)."""

    async def resolve(host: str, port: int, private_ok: bool) -> str:
        return "127.0.0.1" if host == "my_svc" else host

    cfg = config(tmp_path, allow=EgressConfig.rules(["my_svc"], "--allow"))
    proxy = start_proxy(cfg, [sock := listener()], check=resolve)
    try:
        with httpx.Client(proxy=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            answer = client.get(f"http://my_svc:{site.server_address[1]}/under")
    finally:
        proxy.close({})
    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("path=/under")
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert (record["host"], record["decision"]) == ("my_svc", "allow")


def test_an_ipv6_host_is_bracketed_in_the_refusal(tmp_path: Path) -> None:
    """``GET to [::1]:18080 refused``, not ``::1:18080``, and the hint's ``--allow`` too."""
    with running(config(tmp_path)) as (url, _):
        answer = exchange(url, b"GET http://[::1]:18080/ HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 "), answer
    assert b"GET to [::1]:18080 refused" in answer
    assert b"--allow [::1]:18080" in answer and b"allowedDomains" not in answer


def test_the_rate_limits_answer_names_its_option_and_a_refused_connection_uses_none(
    site: _Site, tmp_path: Path
) -> None:
    """One new connection a second: a connection the address check refuses is not dialled
    and leaves the token (the next one is served); past the rate, the 429 names
    ``--new-connections-per-second``."""
    checks = []

    async def resolve(host: str, port: int, private_ok: bool) -> str:
        checks.append(host)
        if len(checks) == 1:
            raise DestinationRefused(
                "refused", host=host, address="10.0.0.1", address_class="private"
            )
        return "127.0.0.1"

    cfg = config(
        tmp_path,
        allow=EgressConfig.rules(["svc.test"], "--allow"),
        limits=Limits(idle_seconds=30, new_connections_per_second=1),
    )
    proxy = start_proxy(cfg, [sock := listener()], check=resolve)
    port = site.server_address[1]
    request = b"GET http://svc.test:%d/x HTTP/1.1\r\nConnection: close\r\n\r\n" % port
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        answers = [exchange(url, request) for _ in range(3)]
    finally:
        proxy.close({})
    assert answers[0].startswith(b"HTTP/1.1 403 "), answers[0]
    assert answers[1].startswith(b"HTTP/1.1 200 "), answers[1]
    assert answers[2].startswith(b"HTTP/1.1 429 "), answers[2]
    assert b"--new-connections-per-second 1" in answers[2]


def test_the_report_under_the_managed_lock_offers_nothing_for_a_private_host() -> None:
    reason = "no managed allow rule matches 127.0.0.3:80 (allowManagedDomainsOnly in x)"
    lines = _report(("127.0.0.3", reason)).lines()
    [note] = [line for line in lines if "127.0.0.3" in line and "refused as" in line]
    assert "out of reach in this run" in note and "administrator" not in note
