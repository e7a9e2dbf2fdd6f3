"""Where the services are: a variable wins over our settings key, which wins over the default."""

from __future__ import annotations

import pytest

from airlock.policy import Context, Origin, Setting, Source, Var
from airlock.policy.services import resolve_collector_url, resolve_domain_safety_service

USER = Origin(Source.USER, "/home/u/.claude/settings.json")
ENV = Origin(Source.ENVIRONMENT)


def _context(variable: str, value: str | None, **settings: Setting[str | None]) -> Context:
    env = {} if value is None else {variable: Var(variable, ((value, ENV),))}
    return Context(env=env, **settings)


@pytest.mark.parametrize(
    ("value", "setting", "expected"),
    [
        pytest.param(None, None, Setting(None, Origin(Source.DEFAULT)), id="unset"),
        pytest.param(None, "https://c.example", Setting("https://c.example", USER), id="setting"),
        pytest.param(
            "http://127.0.0.1:9",
            "https://c.example",
            Setting("http://127.0.0.1:9", ENV),
            id="variable_wins",
        ),
        pytest.param(
            "", "https://c.example", Setting("https://c.example", USER), id="empty_variable"
        ),
    ],
)
def test_resolve_collector_url(
    value: str | None, setting: str | None, expected: Setting[str | None]
) -> None:
    """AIRLOCK_COLLECTOR_URL, then airlock.collectorUrl, each with its origin."""
    settings = {} if setting is None else {"collector_url": Setting(setting, USER)}
    context = _context("AIRLOCK_COLLECTOR_URL", value, **settings)
    assert resolve_collector_url(context) == expected


@pytest.mark.parametrize(
    ("value", "setting", "service"),
    [
        pytest.param(None, None, "https://api.anthropic.com", id="default"),
        pytest.param(None, "https://d.example/", "https://d.example", id="setting"),
        pytest.param(
            "http://127.0.0.1:8/", "https://d.example", "http://127.0.0.1:8", id="variable_wins"
        ),
    ],
)
def test_resolve_domain_safety_service(
    value: str | None, setting: str | None, service: str
) -> None:
    """AIRLOCK_DOMAIN_SAFETY_URL, then airlock.domainSafetyUrl, then the default, without a
    trailing slash; the reason names what decided."""
    settings = {} if setting is None else {"domain_safety_url": Setting(setting, USER)}
    context = _context("AIRLOCK_DOMAIN_SAFETY_URL", value, **settings)
    found, reason = resolve_domain_safety_service(context)
    assert found == service
    assert ("AIRLOCK_DOMAIN_SAFETY_URL=" in reason) is (value is not None)
